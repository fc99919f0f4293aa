"""Decision-bias calibration: decode `x + b` with an additive bias `b` chosen on dev.

A model trained on imbalanced tags tends to be too shy of entities (or, untrained, too eager).
Adding a bias `b` (one value per label) to the logits `x` before the arg-max trades precision
for recall at decision time, with no retraining. `search_bias` chooses `b` to maximise an
entity score (`calibration.objective`: micro or macro F1, micro F1 that keeps every type's
recall, or a blend; conlleval numbers) of a validation split, on cached word-level logits
(one row per word: the logits at the sub-token the word is predicted from), so no candidate
needs a forward pass:

- `outside`: one scalar on the `O` logit, `b = t * e_O`, scanned on a fine grid
  `t in {-outside_bound, ..., outside_bound}` (step `outside_step`);
- `per_type`: starting from the `outside` solution, coordinate ascent over the other labels,
  each bias on a coarse grid `{-bound, ..., bound}` (step `grid_step`) around 0, for at most
  `rounds` rounds. A coordinate moves only when it gains at least `margin` of dev score, and the
  search stops after a round in which none moved. The grid, the bound and the margin are the
  regularisation: an unrestricted per-type search overfits dev (issue 11: +3 to 4 points on
  dev, up to -5 on held-out data).

Adding the same constant to every label does not change any decoding, so the `O` bias carries
the global trade-off and the per-type biases are offsets from it. Ties go to the tied candidate
closest to the current bias (to no bias at all for the `O` scan). A bias that ends on its bound
has not found its optimum: `CalibrationResult.at_bound` names such labels (`calibration.json`
records them and the run logs a warning), and with `outside_widenings=k` the `O` bound is doubled
and the scan repeated up to k times. Off by default: on the study's stored WNUT-17 logits the
`logit_adjusted` runs hit the default bound of 5, and widening it (k=3, to 5.55-6.0) lowered their
cross-fitted dev F1 (per_type 58.1 -> 57.8, outside 57.6 -> 57.4, mean of 3 seeds).

The bias is chosen for the tags that will really be emitted: `decoding="argmax"` tags each word
`argmax(x + b)`, `decoding="viterbi"` takes each sentence's best valid tag sequence of `x + b`
(`ner_imbalance.decoding`). Under argmax a candidate changes only the words it flips; under
Viterbi it can change a whole sentence, so a scan of one label's bias first decodes every
sentence at the two ends of its grid. The score of a tag path is linear in that bias, with slope
the number of words the path gives the label; the best path's count never decreases as the bias
grows, so a sentence whose best path is the same at both ends keeps it over the whole grid, and
only the other sentences are decoded again at each grid value.

Scores are those of `ner_imbalance.evaluation.scores.evaluate_tags` in conlleval mode (seqeval's
chunking): `entity_counts.EntityCounter` counts gold, predicted and correct entities per type of label-id
sequences with vectorised seqeval transition tables, and only for sentences whose prediction
the candidates can change; tests check that its numbers equal `evaluate_tags`'s exactly.

`classifier.fold_bias_into_classifier` adds the chosen `b` to the token-classification head's
output bias; `files` writes and reads the word-level logits and `calibration.json`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ner_imbalance.calibration.objective import (
    DEFAULT_MACRO_WEIGHT,
    DEFAULT_METRIC,
    DEFAULT_RECALL_FLOOR,
    Objective,
    check_metric_options,
)
from ner_imbalance.calibration.scan import BiasScan, Decoder
from ner_imbalance.constants import ARGMAX, CALIBRATION_MODES, DECODING_METHODS, OUTSIDE
from ner_imbalance.evaluation.entity_counts import ChunkTables, EntityCounter, tag_ids
from ner_imbalance.tags import canonical_scheme

NO_CALIBRATION = "none"

DEFAULT_OUTSIDE_STEP = 0.05
DEFAULT_OUTSIDE_BOUND = 5.0
DEFAULT_GRID_STEP = 0.5
DEFAULT_BOUND = 2.0
DEFAULT_MARGIN = 0.005
DEFAULT_ROUNDS = 3


@dataclass(frozen=True, eq=False)
class CalibrationResult:
    """The bias `search_bias` chose and what it did on the data it was chosen on.

    `bias[c]` is added to logit `c` of `labels[c]`. `score_before` / `score_after` are the
    chosen `metric` without / with the bias; `scores_before` / `scores_after` hold `precision`,
    `recall`, `f1` and `macro_f1` (fractions, as `evaluate_tags`) of the tags `decoding`
    gives. `candidates` is the number of biases scored and `rounds` the coordinate-ascent rounds
    run (0 for `outside`); `settings` the grid, bounds (the `O` bound after any widening) and
    margin; `at_bound` the labels whose bias ended on its bound.
    """

    bias: np.ndarray
    labels: tuple[str, ...]
    mode: str
    metric: str
    score_before: float
    score_after: float
    scores_before: dict[str, float]
    scores_after: dict[str, float]
    candidates: int
    rounds: int
    settings: dict[str, float] = field(default_factory=dict)
    decoding: str = ARGMAX
    at_bound: tuple[str, ...] = ()

    def nonzero_biases(self) -> dict[str, float]:
        """`{label: bias}` of the labels whose bias is not 0."""
        return {label: float(value) for label, value in zip(self.labels, self.bias) if value != 0.0}

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready record (`calibration.json`)."""
        return {
            "mode": self.mode,
            "metric": self.metric,
            "labels": list(self.labels),
            "bias": [float(value) for value in self.bias],
            "nonzero_biases": self.nonzero_biases(),
            "score_before": self.score_before,
            "score_after": self.score_after,
            "scores_before": self.scores_before,
            "scores_after": self.scores_after,
            "candidates": self.candidates,
            "rounds": self.rounds,
            "settings": self.settings,
            "decoding": self.decoding,
            "at_bound": list(self.at_bound),
        }

    def describe(self) -> str:
        """One markdown sentence for a model card."""
        biases = ", ".join(f"`{label}` {value:+.2f}" for label, value in self.nonzero_biases().items()) or "none"
        return (
            f"Decision bias calibrated on the validation split (`{self.mode}`, for {self.metric} under "
            f"`{self.decoding}` decoding: "
            f"{100 * self.score_before:.2f} -> {100 * self.score_after:.2f}) and folded into the classifier's "
            f"output bias, so every prediction of this model includes it. Logit biases: {biases}."
        )


def search_bias(
    word_logits: np.ndarray,
    gold_tags: Sequence[Sequence[str]],
    label_list: Sequence[str],
    *,
    mode: str,
    metric: str = DEFAULT_METRIC,
    recall_floor: float = DEFAULT_RECALL_FLOOR,
    macro_weight: float = DEFAULT_MACRO_WEIGHT,
    scheme: str = "IOB2",
    decoding: str = ARGMAX,
    outside_step: float = DEFAULT_OUTSIDE_STEP,
    outside_bound: float = DEFAULT_OUTSIDE_BOUND,
    grid_step: float = DEFAULT_GRID_STEP,
    bound: float = DEFAULT_BOUND,
    margin: float = DEFAULT_MARGIN,
    rounds: int = DEFAULT_ROUNDS,
    outside_widenings: int = 0,
) -> CalibrationResult:
    """The additive logit bias that maximises dev entity F1 of the decoded tags (see the module docstring).

    Args:
        word_logits: `[num_words, num_labels]`, the words of all sentences in order.
        gold_tags: the gold tags, one list per sentence (sentence `i` has `len(gold_tags[i])` words).
        label_list: the label of each logit column; must hold `O`.
        mode: `outside` (one scalar on the `O` logit) or `per_type` (regularised coordinate ascent).
        metric: `micro_f1` (entity F1 over all entities), `macro_f1` (mean of the per-type F1),
            `micro_f1_keep_recall` or `blend` (`calibration.objective`).
        recall_floor: `micro_f1_keep_recall`: every type keeps at least this share of its uncalibrated recall.
        macro_weight: `blend`: the weight of macro F1 against micro F1.
        scheme: the tag scheme ("IOB2" or "IOBES") of the labels: Viterbi's transition constraints.
        decoding: `argmax` or `viterbi`, how the biased logits become tags.
        outside_step, outside_bound: the `O` bias grid, `{-outside_bound, ..., outside_bound}`.
        grid_step, bound: the per-type grid, `{-bound, ..., bound}` around the `O` solution.
        margin: least dev gain (a fraction, 0.005 = half a point) for a per-type move.
        rounds: most coordinate-ascent rounds of `per_type`.
        outside_widenings: how often the `O` bound may be doubled while the best `O` bias lies on it.
    """
    logits = check_word_logits(word_logits, label_list)
    _check_options(mode, scheme, decoding, outside_step, outside_bound, grid_step, bound, margin, rounds)
    check_metric_options(metric, recall_floor, macro_weight)
    lengths = [len(tags) for tags in gold_tags]
    counter = EntityCounter(tag_ids(gold_tags, label_list), lengths, ChunkTables(label_list))
    if counter.num_words != len(logits):
        raise ValueError(f"word_logits has {len(logits)} rows but gold_tags has {counter.num_words} words")
    decoder = Decoder(label_list, scheme, decoding)
    unbiased = decoder(logits, counter.lengths)
    objective = Objective(metric, counter.counts(unbiased), recall_floor=recall_floor, macro_weight=macro_weight)
    search = BiasScan(logits, counter, objective, decoder, unbiased=unbiased)
    bias = np.zeros(len(label_list))
    before = search.score(bias)
    outside = list(label_list).index(OUTSIDE)
    current = before
    for widening in range(outside_widenings + 1):
        bias, current = search.ascend(bias, outside, _grid(outside_step, outside_bound), current, margin=0.0)
        if abs(bias[outside]) < outside_bound - outside_step / 2 or widening == outside_widenings:
            break
        outside_bound *= 2
    rounds_run = 0
    settings = {**objective.settings(), "outside_step": outside_step, "outside_bound": outside_bound}
    at_bound = [OUTSIDE] if abs(bias[outside]) >= outside_bound - outside_step / 2 else []
    if mode == "per_type":
        settings.update(grid_step=grid_step, bound=bound, margin=margin, rounds=rounds)
        others = [index for index in range(len(label_list)) if index != outside]
        type_grid = _grid(grid_step, bound)
        for rounds_run in range(1, rounds + 1):
            moved = False
            for label in others:
                bias, score = search.ascend(bias, label, type_grid, current, margin=margin)
                moved |= score > current
                current = score
            if not moved:
                break
        at_bound += [label_list[index] for index in others if abs(bias[index]) >= type_grid[-1] - grid_step / 2]
    return CalibrationResult(
        bias=bias,
        labels=tuple(label_list),
        mode=mode,
        metric=metric,
        score_before=before,
        score_after=current,
        scores_before=search.all_scores(np.zeros_like(bias)),
        scores_after=search.all_scores(bias),
        candidates=search.candidates,
        rounds=rounds_run,
        settings=settings,
        decoding=decoding,
        at_bound=tuple(at_bound),
    )


def tags_from_logits(
    word_logits: np.ndarray,
    sentence_lengths: Sequence[int],
    label_list: Sequence[str],
    bias: np.ndarray | Sequence[float] | None = None,
    *,
    scheme: str = "IOB2",
    decoding: str = ARGMAX,
) -> list[list[str]]:
    """The tags `decoding` gives to `x + bias` (argmax per word, or Viterbi per sentence), one list
    per sentence of `sentence_lengths` words."""
    logits = check_word_logits(word_logits, label_list)
    lengths = np.asarray(sentence_lengths, dtype=np.int64)
    if lengths.sum() != len(logits):
        raise ValueError(f"word_logits has {len(logits)} rows but sentence_lengths add up to {lengths.sum()}")
    biased = logits + (np.zeros(logits.shape[1]) if bias is None else _checked_bias(bias, logits)).astype(logits.dtype)
    ids = Decoder(label_list, scheme, decoding)(biased, lengths)
    tags = np.asarray(label_list, dtype=object)[ids].tolist()
    starts = np.concatenate(([0], np.cumsum(lengths)))
    return [tags[starts[row] : starts[row + 1]] for row in range(len(lengths))]


def _grid(step: float, bound: float) -> np.ndarray:
    """`{-bound, ..., 0, ..., bound}` in steps of `step` (0 always on the grid)."""
    half = np.round(np.arange(1, int(np.floor(bound / step + 1e-9)) + 1) * step, 10)
    return np.concatenate((-half[::-1], [0.0], half))


def check_word_logits(word_logits: np.ndarray, label_list: Sequence[str]) -> np.ndarray:
    """`word_logits` as float32 `[num_words, len(label_list)]`; `ValueError` unless it has that shape,
    is finite and `label_list` holds `O`."""
    logits = np.asarray(word_logits)
    if logits.ndim != 2 or logits.shape[1] != len(label_list):
        raise ValueError(
            f"word_logits must be [num_words, {len(label_list)}] (one column per label), got {list(logits.shape)}"
        )
    logits = logits.astype(np.float32, copy=False)
    if not np.isfinite(logits).all():
        raise ValueError("word_logits holds NaN or infinite values")
    if OUTSIDE not in label_list:
        raise ValueError(f"label_list has no {OUTSIDE!r} label: {list(label_list)}")
    return logits


def _checked_bias(bias: np.ndarray | Sequence[float], logits: np.ndarray) -> np.ndarray:
    values = np.asarray(bias, dtype=np.float64)
    if values.shape != (logits.shape[1],):
        raise ValueError(f"bias must have one value per label ({logits.shape[1]}), got shape {list(values.shape)}")
    return values


def _check_options(
    mode: str,
    scheme: str,
    decoding: str,
    outside_step: float,
    outside_bound: float,
    grid_step: float,
    bound: float,
    margin: float,
    rounds: int,
) -> None:
    if mode not in CALIBRATION_MODES:
        raise ValueError(f"mode must be one of {', '.join(CALIBRATION_MODES)}, got {mode!r}")
    canonical_scheme(scheme)
    if decoding not in DECODING_METHODS:
        raise ValueError(f"decoding must be one of {', '.join(DECODING_METHODS)}, got {decoding!r}")
    for name, value in (("outside_step", outside_step), ("grid_step", grid_step)):
        if not value > 0:
            raise ValueError(f"{name} must be > 0, got {value}")
    for name, value in (("outside_bound", outside_bound), ("bound", bound), ("margin", margin)):
        if not value >= 0:
            raise ValueError(f"{name} must be >= 0, got {value}")
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
