r"""Mention replacement: each epoch trains on training sentences whose mentions are swapped for others of their type.

From X. Dai and H. Adel, "An Analysis of Simple Data Augmentation for Named Entity Recognition",
COLING 2020, section 3 (mention replacement), with the probability of a replacement raised for the
rare types as the repeat factors of `sampling` raise their sentences: with :math:`f_c` the share of
training sentences that hold a mention of type :math:`c` (`sampling.repeat_factors`), the threshold
:math:`t` (`--repeat_threshold`) and the rate :math:`p` (`--augment_rate`), every training mention
of type :math:`c` is replaced, independently, with probability

.. math:: q_c = \min\left(1, p \sqrt{t / f_c}\right)

by another training mention of type :math:`c`, drawn uniformly from the other occurrences of that
type in the training split (a type with one occurrence is never replaced). The replacement's words
take the tags of a mention of its length in the corpus's scheme: `B-X I-X ...` in IOB2, `S-X` or
`B-X I-X ... E-X` in IOBES; every other word keeps its tag. At :math:`p = 0` nothing is replaced.

A fresh draw each epoch, not one augmented copy: `MentionReplacement.epoch_sentences(epoch)` draws
from a generator seeded with `seed + epoch` (the convention of `sampling.SentenceRepeatSampler`),
one uniform number per mention for whether it is replaced and one for its replacement, whatever
was decided, so an epoch's sentences depend on the seed and the epoch only, and a resumed run
draws what the uninterrupted one drew. Only the training split is augmented: dev and test, and the
class weights and label prior (computed from the word-level training split), never see it.

Where it happens: at the word level, before windowing, since a replacement changes the number of
words and sub-tokens. Each epoch's sentences are cut into windows again by the run's own
`tokenize` (`alignment.tokenize_and_align` with the run's tokenizer and window settings), so the
windows are exactly those of the augmented sentences, and a sentence without a replacement gets
exactly its windows without augmentation. That is the one exact way, and a cheap one: tokenizing
the training split takes seconds once per epoch against minutes of training.

The training rows therefore change with the epoch. `AugmentedEpochs` is the training dataset:
item `EpochRow(epoch, row)` is window `row` of that epoch's windows (the last epoch's windows are
kept; a dataloader worker builds them itself from the same seed). `AugmentedSentenceSampler`, a
`sampling.SentenceRepeatSampler` over the epoch's windows, yields those keys: it draws the epoch's
sentences by their repeat factors (every factor 1 without `--sentence_sampling`: each sentence once
per epoch), lists the drawn sentences' windows of that epoch, and keeps the epoch's length fixed
at that of the windows without augmentation (a replacement that adds or removes a window cuts or
continues the list at its end, as the sampler already does for sentences of several windows), so
the Trainer's schedule, computed once, holds. The epoch's keys carry the epoch, so the rows read
are those of the epoch the sampler drew, in the main process and in every worker alike.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

import datasets
import numpy as np
import torch

from ner_imbalance.constants import IOB2, IOBES, OUTSIDE
from ner_imbalance.data.readers import TAG_COLUMN, TOKEN_COLUMN
from ner_imbalance.data.sampling import SentenceRepeatSampler, WindowLayout, repeat_factors
from ner_imbalance.tags import join_tag, repair, split_tag


class Mention(NamedTuple):
    """Words `[start, end)` of a sentence that form one entity of type `entity_type`."""

    start: int
    end: int
    entity_type: str


class EpochRow(NamedTuple):
    """The key of one training row of an augmented run: window `row` of epoch `epoch`'s windows."""

    epoch: int
    row: int


def sentence_mentions(tags: Sequence[str]) -> list[Mention]:
    """The mentions of one tag sequence (IOB2 or IOBES), in order.

    Read from the repaired tags (`tags.repair`: an inside tag that continues nothing begins a
    mention), so every word with an entity tag is in exactly one mention.
    """
    mentions: list[Mention] = []
    start, current_type = None, ""
    for position, tag in enumerate([*repair(tags), OUTSIDE]):
        prefix, entity_type = split_tag(tag)
        if start is not None and prefix not in ("I", "E"):
            mentions.append(Mention(start, position, current_type))
            start = None
        if prefix in ("B", "S"):
            start, current_type = position, entity_type
        if prefix in ("E", "S"):
            mentions.append(Mention(start, position + 1, current_type))
            start = None
    return mentions


def mention_tags(entity_type: str, length: int, scheme: str) -> list[str]:
    """The tags of a mention of `length` words: `B-X I-X ...` (IOB2); `S-X`, or `B-X I-X ... E-X` (IOBES)."""
    if length < 1:
        raise ValueError(f"a mention has at least one word; got {length}")
    if scheme == IOB2:
        prefixes = ["B"] + ["I"] * (length - 1)
    elif scheme == IOBES:
        prefixes = ["S"] if length == 1 else ["B"] + ["I"] * (length - 2) + ["E"]
    else:
        raise ValueError(f"scheme must be {IOB2} or {IOBES}; got {scheme!r}")
    return [join_tag(prefix, entity_type) for prefix in prefixes]


def replacement_probabilities(
    tag_sequences: Sequence[Sequence[str]], threshold: float, rate: float
) -> dict[str, float]:
    r""":math:`q_c = \min(1, p \sqrt{t / f_c})` for every entity type :math:`c` of the training tags, by name.

    :math:`f_c` is the share of sentences holding type :math:`c`, as `sampling.repeat_factors` finds it.
    """
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"rate must be in [0, 1]; got {rate!r}")
    _factors, per_type = repeat_factors(tag_sequences, threshold)
    return {name: min(1.0, rate * math.sqrt(threshold / found.sentence_share)) for name, found in per_type.items()}


class MentionReplacement:
    """The training sentences of every epoch, with mentions replaced (see the module docstring).

    Args:
        sentences: The word-level training split (`tokens`, `tags`).
        scheme: Its tag scheme, `IOB2` or `IOBES` (`data.corpus.WordCorpus.scheme`).
        threshold: :math:`t` of the repeat factors, in (0, 1].
        rate: :math:`p`, in [0, 1].
        seed: The run's seed; epoch `e` draws from `seed + e`.
    """

    def __init__(self, sentences: datasets.Dataset, *, scheme: str, threshold: float, rate: float, seed: int) -> None:
        self.tokens: list[list[str]] = sentences[TOKEN_COLUMN]
        self.tags: list[list[str]] = sentences[TAG_COLUMN]
        self.scheme = scheme
        self.seed = seed
        self.probabilities = replacement_probabilities(self.tags, threshold, rate)
        self.mentions = [sentence_mentions(tags) for tags in self.tags]
        # Every mention of the split in order, its type's replacement probability, the pool of its
        # type (the words of every mention of that type) and its own place in that pool.
        self.pools: dict[str, list[list[str]]] = {name: [] for name in self.probabilities}
        own_place, probability, pool_size = [], [], []
        for tokens, mentions in zip(self.tokens, self.mentions):
            for mention in mentions:
                own_place.append(len(self.pools[mention.entity_type]))
                self.pools[mention.entity_type].append(tokens[mention.start : mention.end])
                probability.append(self.probabilities[mention.entity_type])
        for tokens, mentions in zip(self.tokens, self.mentions):
            pool_size.extend(len(self.pools[mention.entity_type]) for mention in mentions)
        self.own_place = np.array(own_place, dtype=np.int64)
        self.probability = np.array(probability, dtype=np.float64)
        self.pool_size = np.array(pool_size, dtype=np.int64)

    def replacements(self, epoch: int) -> np.ndarray:
        """For every mention of the split, in order, the place in its type's pool of its replacement
        in `epoch`, or -1 where it is kept."""
        generator = np.random.default_rng(self.seed + epoch)
        replaced = generator.random(len(self.probability)) < self.probability
        # Uniform over the other pool members: a draw in [0, size - 1), shifted past the mention's own place.
        other = np.floor(generator.random(len(self.probability)) * (self.pool_size - 1)).astype(np.int64)
        other += other >= self.own_place
        return np.where(replaced & (self.pool_size > 1), other, -1)

    def epoch_sentences(self, epoch: int) -> datasets.Dataset:
        """The training split of `epoch` (`tokens`, `tags`, in the split's order), mentions replaced."""
        choices = iter(self.replacements(epoch).tolist())
        tokens_out, tags_out, scheme = [], [], self.scheme
        for tokens, tags, mentions in zip(self.tokens, self.tags, self.mentions):
            new_tokens, new_tags, position = [], [], 0
            for mention in mentions:
                choice = next(choices)
                if choice < 0:
                    continue
                words = self.pools[mention.entity_type][choice]
                new_tokens += [*tokens[position : mention.start], *words]
                new_tags += [*tags[position : mention.start], *mention_tags(mention.entity_type, len(words), scheme)]
                position = mention.end
            tokens_out.append([*new_tokens, *tokens[position:]])
            tags_out.append([*new_tags, *tags[position:]])
        return datasets.Dataset.from_dict({TOKEN_COLUMN: tokens_out, TAG_COLUMN: tags_out})


class AugmentedEpochs(torch.utils.data.Dataset):
    """The training rows of an augmented run: item `EpochRow(epoch, row)` is window `row` of `epoch`.

    `tokenize` turns an epoch's sentences into windows (`alignment.tokenize_and_align` with the
    run's settings: columns `example_index`, `length` and the model inputs); the windows of the
    last epoch asked for are kept. `len()` is the number of windows without augmentation
    (`plain_windows`), the epoch length the sampler keeps.
    """

    def __init__(
        self,
        replacement: MentionReplacement,
        tokenize: Callable[[datasets.Dataset], datasets.Dataset],
        plain_windows: datasets.Dataset,
    ) -> None:
        self.replacement = replacement
        self.tokenize = tokenize
        self.plain_windows = plain_windows
        self._epoch: int | None = None
        self._windows: datasets.Dataset | None = None

    def windows(self, epoch: int) -> datasets.Dataset:
        """The windows of `epoch`'s augmented sentences (built once per epoch)."""
        if epoch != self._epoch:
            self._windows = self.tokenize(self.replacement.epoch_sentences(epoch))
            self._epoch = epoch
        return self._windows

    def __len__(self) -> int:
        return len(self.plain_windows)

    def __getitem__(self, key: EpochRow) -> dict[str, Any]:
        epoch, row = key
        return self.windows(epoch)[row]


class AugmentedSentenceSampler(SentenceRepeatSampler):
    """`SentenceRepeatSampler` over each epoch's augmented windows, yielding `EpochRow` keys.

    The sentence draws, the epoch's length (from the windows without augmentation), the shuffling
    and the length grouping are the base sampler's, from `seed + epoch`; only the windows of each
    drawn sentence and their lengths are those of the epoch (`AugmentedEpochs.windows`). Every
    keyword argument is the base's; `lengths` are read from each epoch's windows.
    """

    def __init__(self, epochs: AugmentedEpochs, sentence_factors: Sequence[float] | np.ndarray, **kwargs: Any) -> None:
        plain = epochs.plain_windows
        super().__init__(plain["example_index"], sentence_factors, lengths=plain["length"], **kwargs)
        self.epochs = epochs

    def __iter__(self) -> Iterator[EpochRow]:
        rows = self.epoch_indices(self.epoch)[self.rank :: self.num_replicas]
        return iter([EpochRow(self.epoch, row) for row in rows.tolist()])

    def window_layout(self, epoch: int) -> WindowLayout:
        windows = self.epochs.windows(epoch)
        layout = WindowLayout.of(windows["example_index"], windows["length"])
        if not np.array_equal(layout.sentences, self.layout.sentences):
            raise ValueError(f"epoch {epoch}'s windows do not cover the same sentences as the plain windows")
        return layout
