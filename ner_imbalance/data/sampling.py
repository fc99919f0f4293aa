r"""Repeat-factor and weighted sampling of training sentences, carried out over their sub-token windows.

Repeat factor sampling is from A. Gupta, P. Dollár, R. Girshick, "LVIS: A Dataset for Large
Vocabulary Instance Segmentation", CVPR 2019 (arXiv:1908.03195), section 5 (detectron2's
`RepeatFactorTrainingSampler`), with sentences for images and entity types for object categories.
For each entity type :math:`c`, let :math:`f_c` be the share of training sentences that contain
an entity of type :math:`c`; with a threshold :math:`t`,

.. math:: r_c = \max\left(1, \sqrt{t / f_c}\right), \qquad r_s = \max_{c \in s} r_c

(:math:`r_s = 1` for a sentence without entities): a sentence is repeated about :math:`r_s` times
per epoch, so the sentences of types rarer than :math:`t` are seen more often, and a sentence
with no rare type is seen once, as before.

`repeat_factors` computes the factors from the tag sequences; `SentenceRepeatSampler` draws the
sentences of each epoch and yields the indices of their windows (the training rows are windows of
at most `max_seq_length` sub-tokens, each with the `example_index` of its sentence: every window of
a drawn sentence is drawn with it). The draws depend on the seed and the epoch only, the epoch's
length is the same for the whole run, and with `group_by_length` the drawn windows are grouped
into batches of similar length as the Trainer's `LengthGroupedSampler` groups a dataset.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import numpy as np
import torch
from torch.utils.data import Sampler
from transformers.trainer_pt_utils import get_length_grouped_indices

from ner_imbalance.constants import REPEAT_FACTOR, SAMPLING_MODES
from ner_imbalance.tags import entity_types


class WindowLayout(NamedTuple):
    """Which windows belong to which sentence: the windows of the k-th sentence that has windows
    (`sentences[k]`) are `window_order[first_window[k] : first_window[k] + window_counts[k]]`;
    `lengths` are the windows' sub-tokens (None where not given)."""

    window_order: np.ndarray
    sentences: np.ndarray
    first_window: np.ndarray
    window_counts: np.ndarray
    lengths: np.ndarray | None

    @classmethod
    def of(cls, example_index: Sequence[int] | np.ndarray, lengths: Sequence[int] | np.ndarray | None) -> WindowLayout:
        """The layout of windows whose sentences are `example_index`."""
        sentence_of_window = np.asarray(example_index, dtype=np.int64)
        window_order = np.argsort(sentence_of_window, kind="stable")
        sentences, first_window, window_counts = np.unique(
            sentence_of_window[window_order], return_index=True, return_counts=True
        )
        window_lengths = None if lengths is None else np.asarray(lengths, dtype=np.int64)
        return cls(window_order, sentences, first_window, window_counts, window_lengths)


class TypeRepeatFactor(NamedTuple):
    """What `repeat_factors` finds for one entity type: in how many training sentences it occurs,
    their share :math:`f_c` of all sentences, and its repeat factor :math:`r_c`."""

    num_sentences: int
    sentence_share: float
    repeat_factor: float


def repeat_factors(
    tag_sequences: Sequence[Sequence[str]], threshold: float
) -> tuple[np.ndarray, dict[str, TypeRepeatFactor]]:
    r"""The repeat factor of every sentence, and what it comes from for every entity type.

    Args:
        tag_sequences: The tags of every training sentence (IOB2 or IOBES), in the order of the
            training split's rows, so that a window's `example_index` indexes the result.
        threshold: :math:`t` in (0, 1]: a type in a share :math:`f_c < t` of the sentences gets
            :math:`r_c = \sqrt{t / f_c} > 1` (LVIS uses t = 0.001 over images; a sentence corpus
            with tens of types calls for a larger one, such as 0.1).

    Returns:
        A float64 array of :math:`r_s` (one per sentence, :math:`\ge 1`) and, for every type,
        sorted by name, its `TypeRepeatFactor` (to print and record).

    For example, with t = 0.4 over 10 sentences, a type in 4 of them gets
    :math:`r = \max(1, \sqrt{0.4/0.4}) = 1`, one in 2 gets :math:`\sqrt 2`, one in 1 gets 2; a sentence
    with the first two types gets :math:`\sqrt 2`.
    """
    if not (isinstance(threshold, (int, float)) and not isinstance(threshold, bool) and 0 < threshold <= 1):
        raise ValueError(f"threshold must be a float in (0, 1]; got {threshold!r}")
    types_per_sentence = [set(entity_types(tags)) for tags in tag_sequences]
    if not types_per_sentence:
        raise ValueError("repeat factors need at least one training sentence")
    sentences_per_type: dict[str, int] = {}
    for types in types_per_sentence:
        for name in types:
            sentences_per_type[name] = sentences_per_type.get(name, 0) + 1
    per_type = {}
    for name in sorted(sentences_per_type):
        share = sentences_per_type[name] / len(types_per_sentence)
        per_type[name] = TypeRepeatFactor(sentences_per_type[name], share, max(1.0, math.sqrt(threshold / share)))
    factors = np.array(
        [max((per_type[name].repeat_factor for name in types), default=1.0) for types in types_per_sentence],
        dtype=np.float64,
    )
    return factors, per_type


def inclusion_probabilities(weights: np.ndarray, sample_size: int) -> np.ndarray:
    r"""Probabilities :math:`\pi_s = \min(1, \lambda w_s)` with :math:`\sum_s \pi_s` = `sample_size`.

    The inclusion probabilities of a sample of `sample_size` distinct items drawn with probability
    proportional to the non-negative `weights` (at most the number of positive weights): items that
    would get :math:`\pi > 1` are taken for sure and :math:`\lambda` is recomputed over the others,
    until none exceeds 1.
    """
    certain = np.zeros(len(weights), dtype=bool)
    while True:
        free = (weights > 0) & ~certain
        remaining = sample_size - int(certain.sum())
        scale = remaining / weights[free].sum() if free.any() else 0.0
        probabilities = np.where(certain, 1.0, scale * weights)
        exceeding = free & (probabilities >= 1.0)
        if not exceeding.any():
            return probabilities
        certain |= exceeding


def systematic_sample(probabilities: np.ndarray, generator: torch.Generator) -> np.ndarray:
    r"""`round(sum(probabilities))` distinct items, item :math:`s` with probability :math:`\pi_s \le 1`.

    Systematic sampling with unequal probabilities (W. G. Madow, "On the theory of systematic
    sampling, II", Ann. Math. Stat. 1949) in a random order: the items, shuffled, cover the
    intervals :math:`[\Pi_{s-1}, \Pi_s)` of the cumulated probabilities, and the items whose
    interval holds one of the points :math:`u, u+1, \dots` (:math:`u` uniform in [0, 1)) are taken.
    An interval of length :math:`\pi_s \le 1` holds a point with probability exactly :math:`\pi_s`,
    and there are exactly as many points as the probabilities sum to.
    """
    sample_size = round(float(probabilities.sum()))
    if sample_size == 0:
        return np.zeros(0, dtype=np.int64)
    order = torch.randperm(len(probabilities), generator=generator).numpy()
    cumulative = np.cumsum(probabilities[order])
    points = float(torch.rand((), generator=generator, dtype=torch.float64)) + np.arange(sample_size)
    hit = np.searchsorted(cumulative, points, side="right").clip(max=len(order) - 1)
    return order[hit]


class SentenceRepeatSampler(Sampler[int]):
    r"""Window indices of the training sentences drawn for an epoch by their repeat factors.

    The training rows are windows; `example_index[w]` is the sentence of window `w`, and
    `sentence_factors[s]` the factor :math:`r_s` of sentence `s` (from `repeat_factors`). Each
    epoch draws sentences, and every drawn sentence contributes all its windows, as often as it
    is drawn. With :math:`S` the sentences that have windows:

    - `"repeat_factor"` (LVIS): sentence :math:`s` is drawn :math:`\lfloor r_s \rfloor` times plus
      at most once more. The epoch holds :math:`N = \mathrm{round}(\sum_s r_s)` draws for the whole
      run: the whole parts, then :math:`N - \sum_s \lfloor r_s \rfloor` distinct extra draws
      by systematic sampling with inclusion probabilities
      :math:`\pi_s = \min(1, \lambda (r_s - \lfloor r_s \rfloor))` summing to that number
      (`inclusion_probabilities`, `systematic_sample`). The expected draws of :math:`s` are
      :math:`\lfloor r_s \rfloor + \pi_s`, exactly :math:`r_s` when the fractional parts sum to an
      integer, and otherwise off by the factor :math:`\lambda` on the fractional part, with
      :math:`|\lambda - 1| \le 1/(2\sum_s (r_s - \lfloor r_s \rfloor))`. Factors must be >= 1.
    - `"weighted"`: :math:`|S|` draws with replacement, :math:`s` with probability
      :math:`r_s / \sum r` (as `torch.utils.data.WeightedRandomSampler`). Factors must be > 0.

    Epoch length: a drawn sentence with several windows adds several indices, so the number of
    windows would vary with the draw. It is fixed instead at the expected number,
    :math:`W = \mathrm{round}(\sum_s E[\text{draws of } s] \cdot \text{windows of } s)` (at least 1),
    raised to a multiple of `num_replicas`: the drawn sentences are shuffled, their windows listed
    sentence by sentence, and the list cut at that length or continued from its start
    (`numpy.resize`), so that at most one sentence has only part of its windows repeated. When every
    sentence has one window, or all have the same number, nothing is cut or added. `len(sampler)` is
    this length divided by `num_replicas`: the Trainer computes its schedule once from it.

    Then the windows are shuffled; with `group_by_length` they are ordered by
    `transformers.trainer_pt_utils.get_length_grouped_indices` on their `lengths` (the Trainer's
    `group_by_length`): a random permutation cut into mega-batches of
    :math:`\min(50, \lfloor n / (4 \cdot \text{batch\_size}) \rfloor)` batches (at least one), each
    sorted by length, longest first, and the longest window moved to the very front. Process `rank`
    of `num_replicas` yields every `num_replicas`-th index from position `rank`.

    Every random choice comes from a `torch.Generator` seeded with `seed + epoch` (the convention
    of `DistributedSampler`): the indices of an epoch depend on the seed and the epoch only, not on
    how often the sampler was iterated, so a resumed run that calls `set_epoch` draws what the
    uninterrupted run drew, and every process draws the same epoch before taking its share.

    Args:
        example_index: The sentence of every window (the training windows' `example_index`).
        sentence_factors: :math:`r_s` for every sentence, indexed by `example_index`.
        mode: `"repeat_factor"` (default) or `"weighted"`.
        lengths: Sub-tokens of every window (the windows' `length` column); needed with
            `group_by_length`.
        group_by_length: Group the epoch's windows into batches of similar length (default True).
        batch_size: Windows per batch over all processes for the mega-batches of `group_by_length`
            (per-device batch size x gradient accumulation steps x `num_replicas`).
        seed: Seed of the draws (the run's seed).
        num_replicas: Number of processes sharing the epoch (1: this sampler yields it all).
        rank: This process's index, in [0, num_replicas).
    """

    def __init__(
        self,
        example_index: Sequence[int] | np.ndarray,
        sentence_factors: Sequence[float] | np.ndarray,
        *,
        mode: str = REPEAT_FACTOR,
        lengths: Sequence[int] | np.ndarray | None = None,
        group_by_length: bool = True,
        batch_size: int = 1,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
    ) -> None:
        if mode not in SAMPLING_MODES:
            raise ValueError(f"mode must be one of {SAMPLING_MODES}; got {mode!r}")
        sentence_of_window = np.asarray(example_index, dtype=np.int64)
        factors = np.asarray(sentence_factors, dtype=np.float64)
        if sentence_of_window.ndim != 1 or len(sentence_of_window) == 0:
            raise ValueError("example_index must be a non-empty sequence, one sentence index per window")
        if factors.ndim != 1 or sentence_of_window.min() < 0 or sentence_of_window.max() >= len(factors):
            raise ValueError(f"example_index must index sentence_factors (of length {len(factors)})")
        lowest = 1.0 if mode == REPEAT_FACTOR else 0.0
        if not (np.isfinite(factors).all() and (factors >= lowest).all() and (factors > 0).all()):
            raise ValueError(f"sentence_factors must be finite and {'>= 1' if lowest else '> 0'} for mode {mode!r}")
        if group_by_length:
            if lengths is None or len(lengths) != len(sentence_of_window):
                raise ValueError("group_by_length needs lengths, one per window")
        if not (isinstance(batch_size, int) and batch_size >= 1):
            raise ValueError(f"batch_size must be an int >= 1; got {batch_size!r}")
        if not (isinstance(num_replicas, int) and num_replicas >= 1 and isinstance(rank, int)):
            raise ValueError(f"num_replicas must be an int >= 1 and rank an int; got {num_replicas!r}, {rank!r}")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank must be in [0, num_replicas={num_replicas}); got {rank}")

        self.mode = mode
        self.group_by_length = group_by_length
        self.batch_size = batch_size
        self.seed = seed
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        self.layout = WindowLayout.of(sentence_of_window, lengths)
        self.lengths, self.sentences = self.layout.lengths, self.layout.sentences
        sentence_factor = factors[self.sentences]
        if mode == REPEAT_FACTOR:
            self.whole_draws = np.floor(sentence_factor).astype(np.int64)
            fractions = sentence_factor - self.whole_draws
            self.extra_probabilities = inclusion_probabilities(fractions, round(float(fractions.sum())))
            expected = self.whole_draws + self.extra_probabilities
        else:
            self.draw_probabilities = sentence_factor / sentence_factor.sum()
            expected = len(self.sentences) * self.draw_probabilities
        # Per epoch: sentence draws, the expected draws of every sentence (0 for one without
        # windows), window indices over all processes, and those padded to a multiple of num_replicas.
        self.num_sentence_draws = round(float(expected.sum()))
        self.expected_draws = np.zeros(len(factors))
        self.expected_draws[self.sentences] = expected
        self.num_windows = max(1, round(float((expected * self.layout.window_counts).sum())))
        self.total_size = math.ceil(self.num_windows / num_replicas) * num_replicas

    def window_layout(self, epoch: int) -> WindowLayout:
        """The windows of every sentence in `epoch`: the same every epoch (a subclass whose windows
        change with the epoch, `augmentation.AugmentedSentenceSampler`, overrides it)."""
        return self.layout

    def set_epoch(self, epoch: int) -> None:
        """Draw the sentences of `epoch` at the next iteration (the Trainer calls it before each epoch)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.total_size // self.num_replicas

    def __iter__(self) -> Iterator[int]:
        return iter(self.epoch_indices(self.epoch)[self.rank :: self.num_replicas].tolist())

    def _sentence_draws(self, generator: torch.Generator) -> np.ndarray:
        """How often each sentence with windows (in `self.sentences` order) is drawn this epoch."""
        if self.mode == REPEAT_FACTOR:
            draws = self.whole_draws.copy()
            np.add.at(draws, systematic_sample(self.extra_probabilities, generator), 1)
            return draws
        drawn = torch.multinomial(
            torch.from_numpy(self.draw_probabilities), len(self.sentences), replacement=True, generator=generator
        )
        return np.bincount(drawn.numpy(), minlength=len(self.sentences))

    def epoch_indices(self, epoch: int) -> np.ndarray:
        """The window indices of `epoch` for all processes, in order (`total_size` of them)."""
        layout = self.window_layout(epoch)
        generator = torch.Generator().manual_seed(self.seed + epoch)
        drawn = np.repeat(np.arange(len(self.sentences)), self._sentence_draws(generator))
        drawn = drawn[torch.randperm(len(drawn), generator=generator).numpy()]
        windows_per_draw = layout.window_counts[drawn]
        first_of_draw = np.cumsum(windows_per_draw) - windows_per_draw
        offset_in_sentence = np.arange(windows_per_draw.sum()) - np.repeat(first_of_draw, windows_per_draw)
        windows = layout.window_order[np.repeat(layout.first_window[drawn], windows_per_draw) + offset_in_sentence]
        windows = np.resize(windows, self.total_size)
        if self.group_by_length:
            order = get_length_grouped_indices(layout.lengths[windows].tolist(), self.batch_size, generator=generator)
        else:
            order = torch.randperm(len(windows), generator=generator).tolist()
        return windows[order]
