"""Decision-bias calibration: decode `x + b` with an additive bias `b` chosen on dev.

A model trained on imbalanced tags tends to be too shy of entities (or, untrained, too eager).
Adding a bias `b` (one value per label) to the logits `x` before the arg-max trades precision
for recall at decision time, with no retraining. `search_bias` chooses `b` to maximise the
entity F1 (micro or macro, conlleval numbers) of a validation split, on cached word-level logits
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

from ner_imbalance.constants import ARGMAX, CALIBRATION_MODES, DECODING_METHODS, OUTSIDE
from ner_imbalance.decoding import decode
from ner_imbalance.evaluation.entity_counts import ChunkTables, EntityCounter, macro_f1, micro_scores, tag_ids
from ner_imbalance.evaluation.scores import SCHEMES

NO_CALIBRATION = "none"
CALIBRATION_METRICS = ("micro_f1", "macro_f1")
DEFAULT_METRIC = "micro_f1"

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
        metric: `micro_f1` (entity F1 over all entities) or `macro_f1` (mean of the per-type F1).
        scheme: the tag scheme ("IOB2" or "IOBES") of the labels: Viterbi's transition constraints.
        decoding: `argmax` or `viterbi`, how the biased logits become tags.
        outside_step, outside_bound: the `O` bias grid, `{-outside_bound, ..., outside_bound}`.
        grid_step, bound: the per-type grid, `{-bound, ..., bound}` around the `O` solution.
        margin: least dev gain (a fraction, 0.005 = half a point) for a per-type move.
        rounds: most coordinate-ascent rounds of `per_type`.
        outside_widenings: how often the `O` bound may be doubled while the best `O` bias lies on it.
    """
    logits = check_word_logits(word_logits, label_list)
    _check_options(mode, metric, scheme, decoding, outside_step, outside_bound, grid_step, bound, margin, rounds)
    lengths = [len(tags) for tags in gold_tags]
    counter = EntityCounter(tag_ids(gold_tags, label_list), lengths, ChunkTables(label_list))
    if counter.num_words != len(logits):
        raise ValueError(f"word_logits has {len(logits)} rows but gold_tags has {counter.num_words} words")
    search = _Search(logits, counter, metric, _Decoder(label_list, scheme, decoding))
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
    settings = {"outside_step": outside_step, "outside_bound": outside_bound}
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
    ids = _Decoder(label_list, scheme, decoding)(biased, lengths)
    tags = np.asarray(label_list, dtype=object)[ids].tolist()
    starts = np.concatenate(([0], np.cumsum(lengths)))
    return [tags[starts[row] : starts[row + 1]] for row in range(len(lengths))]


class _Decoder:
    """`ner_imbalance.decoding.decode` with the label list, scheme and method fixed."""

    def __init__(self, label_list: Sequence[str], scheme: str, method: str) -> None:
        self.label_list, self.scheme, self.method = list(label_list), scheme, method

    def __call__(self, biased_logits: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        return decode(biased_logits, lengths, self.label_list, scheme=self.scheme, method=self.method)


class _Search:
    """Scores biases on the fixed dev logits under a decoding; counts the candidates scored."""

    def __init__(self, logits: np.ndarray, counter: EntityCounter, metric: str, decoder: _Decoder) -> None:
        self.logits = logits
        self.columns = np.ascontiguousarray(logits.T)
        self.counter = counter
        self.metric = metric
        self.decoder = decoder
        self.candidates = 0
        self._word_starts = np.cumsum(counter.lengths) - counter.lengths

    def predict(self, bias: np.ndarray) -> np.ndarray:
        """Label ids of every word under the bias (`x + b` in the logits' float32, as the model's head adds it)."""
        return self.decoder(self.logits + bias.astype(self.logits.dtype), self.counter.lengths)

    def score(self, bias: np.ndarray) -> float:
        self.candidates += 1
        return _metric(self.counter.counts(self.predict(bias)), self.metric)

    def all_scores(self, bias: np.ndarray) -> dict[str, float]:
        counts = self.counter.counts(self.predict(bias))
        precision, recall, f1 = micro_scores(counts)
        return {"precision": precision, "recall": recall, "f1": f1, "macro_f1": macro_f1(counts)}

    def ascend(
        self, bias: np.ndarray, label: int, grid: np.ndarray, current: float, *, margin: float
    ) -> tuple[np.ndarray, float]:
        """Best value of `bias[label]` on `grid` (others fixed), taken if it gains >= `margin` (and > 0)."""
        if self.decoder.method == ARGMAX:
            scores = self._argmax_scan(bias, label, grid)
        else:
            scores = self._sentence_scan(bias, label, grid)
        self.candidates += len(grid)
        best = scores.max()
        closest = np.flatnonzero(scores == best)[np.argmin(np.abs(grid[scores == best] - bias[label]))]
        if best > current and best - current >= margin:
            moved = bias.copy()
            moved[label] = grid[closest]
            return moved, float(best)
        return bias, current

    def _argmax_scan(self, bias: np.ndarray, label: int, grid: np.ndarray) -> np.ndarray:
        """The metric at every grid value of `bias[label]` under argmax decoding.

        With the other biases fixed, `argmax(x + b)` is `label` exactly where `x_label + v`
        beats the largest earlier biased logit and ties or beats the largest later one (arg-max
        takes the first maximum), else the arg-max of the other labels. As `v` grows, words only
        switch to `label`; each word switches at one grid step. So the grid is walked upwards
        and at each step only the sentences with a word switching there are re-counted.
        """
        counter = self.counter
        rule = _OneLabelRule(self.columns, bias, label)
        predicted = rule.predict(grid[0])
        switching = np.flatnonzero(predicted != rule.predict(grid[-1]))
        switch_rule = rule.subset(switching)
        switch_step = np.zeros(len(switching), dtype=np.int64)
        for step in range(len(grid) - 1, 0, -1):
            switch_step[switch_rule.wins(grid[step])] = step
        order = np.argsort(switch_step, kind="stable")
        bounds = np.searchsorted(switch_step[order], np.arange(len(grid) + 1))
        counts = counter.counts(predicted)
        scores = np.empty(len(grid))
        scores[0] = _metric(counts, self.metric)
        for step in range(1, len(grid)):
            words = switching[order[bounds[step] : bounds[step + 1]]]
            if len(words):
                sentences = np.zeros(len(counter.lengths), dtype=bool)
                sentences[counter.sentence_of_word[words]] = True
                subset = counter.subset(sentences)
                in_subset = sentences[counter.sentence_of_word]
                before = subset.counts(predicted[in_subset])
                predicted[words] = label
                counts = counts - before + subset.counts(predicted[in_subset])
            scores[step] = _metric(counts, self.metric)
        return scores

    def _sentence_scan(self, bias: np.ndarray, label: int, grid: np.ndarray) -> np.ndarray:
        """The metric at every grid value of `bias[label]` under a sentence-level decoding (Viterbi).

        A sentence whose best path is the same at two grid values keeps it in between (see the
        module docstring). So every sentence is decoded at both ends of the grid; those whose path
        differs are decoded at the middle of the grid and the halves are searched the same way,
        each with only its sentences whose path still differs between its ends (bisection). A
        sentence is decoded about (times its path changes) x log2(grid size) times, not once per
        grid value. The counts of the sentences found constant on a stretch of the grid are added
        to that stretch at once.
        """
        counter = self.counter
        last = len(grid) - 1
        # Per grid index, the counts of every sentence: accumulated as differences over the grid.
        differences = np.zeros((len(grid) + 1, *counter.counts(np.zeros(counter.num_words, np.int64)).shape))
        candidate = bias.copy()

        def decode_at(step: int, sentences: np.ndarray) -> np.ndarray:
            candidate[label] = grid[step]
            words = np.repeat(self._word_starts[sentences], counter.lengths[sentences]) + _offsets(
                counter.lengths[sentences]
            )
            return self.decoder(self.logits[words] + candidate.astype(self.logits.dtype), counter.lengths[sentences])

        def add(first: int, stop: int, sentences: np.ndarray, predicted: np.ndarray) -> None:
            """Add the counts of `sentences` tagged `predicted` to grid indices `first` to `stop - 1`."""
            if len(sentences) and stop > first:
                mask = np.zeros(len(counter.lengths), dtype=bool)
                mask[sentences] = True
                counts = counter.subset(mask).counts(predicted)
                differences[first] += counts
                differences[stop] -= counts

        def search(first: int, stop: int, sentences: np.ndarray, at_first: np.ndarray, at_stop: np.ndarray) -> None:
            """Grid indices `first` to `stop - 1` for `sentences`, whose paths at `first` and `stop` differ."""
            if stop - first == 1:
                add(first, stop, sentences, at_first)
                return
            middle = (first + stop) // 2
            at_middle = decode_at(middle, sentences)
            for start, end, left, right in ((first, middle, at_first, at_middle), (middle, stop, at_middle, at_stop)):
                same = _same_per_sentence(left, right, counter.lengths[sentences])
                add(start, end, sentences[same], left[np.repeat(same, counter.lengths[sentences])])
                changing = ~same
                if changing.any():
                    word_changing = np.repeat(changing, counter.lengths[sentences])
                    search(start, end, sentences[changing], left[word_changing], right[word_changing])

        every = np.arange(len(counter.lengths))
        at_low, at_high = decode_at(0, every), decode_at(last, every)
        add(last, last + 1, every, at_high)
        if last:
            same = _same_per_sentence(at_low, at_high, counter.lengths)
            add(0, last, every[same], at_low[np.repeat(same, counter.lengths)])
            word_changing = np.repeat(~same, counter.lengths)
            if (~same).any():
                search(0, last, every[~same], at_low[word_changing], at_high[word_changing])
        counts = np.cumsum(differences[:-1], axis=0)
        return np.array([_metric(step_counts, self.metric) for step_counts in counts])


def _offsets(lengths: np.ndarray) -> np.ndarray:
    """`0 .. length - 1` for each sentence, concatenated."""
    return np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)


def _same_per_sentence(first: np.ndarray, second: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Per sentence (of `lengths` words, concatenated), whether `first` and `second` agree on every word."""
    sentence_of_word = np.repeat(np.arange(len(lengths)), lengths)
    return np.bincount(sentence_of_word[first != second], minlength=len(lengths)) == 0


class _OneLabelRule:
    """`argmax(x + b)` per word as a function of `v = b[label]` alone (the other biases fixed),
    in the same float32 arithmetic as `_predict`. `columns` are the logits transposed, `[C, N]`."""

    def __init__(self, columns: np.ndarray, bias: np.ndarray, label: int) -> None:
        biased = columns + bias.astype(columns.dtype)[:, None]
        biased[label] = -np.inf
        self.label = label
        self.own = columns[label]
        self.earlier = biased[: label + 1].max(axis=0)
        self.later = biased[label:].max(axis=0)
        best = np.maximum(self.earlier, self.later)
        # The first other label reaching the best biased logit: scan from the last label down.
        self.others = np.zeros(columns.shape[1], dtype=np.int64)
        for other in range(len(columns) - 1, -1, -1):
            if other != label:
                self.others = np.where(biased[other] == best, other, self.others)

    def subset(self, words: np.ndarray) -> _OneLabelRule:
        rule = object.__new__(_OneLabelRule)
        rule.label = self.label
        rule.own, rule.earlier, rule.later, rule.others = (
            values[words] for values in (self.own, self.earlier, self.later, self.others)
        )
        return rule

    def wins(self, value: float) -> np.ndarray:
        shifted = self.own + self.own.dtype.type(value)
        return (shifted > self.earlier) & (shifted >= self.later)

    def predict(self, value: float) -> np.ndarray:
        return np.where(self.wins(value), self.label, self.others)


def _metric(counts: np.ndarray, metric: str) -> float:
    return micro_scores(counts)[2] if metric == "micro_f1" else macro_f1(counts)


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
    metric: str,
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
    if metric not in CALIBRATION_METRICS:
        raise ValueError(f"metric must be one of {', '.join(CALIBRATION_METRICS)}, got {metric!r}")
    if scheme.upper() not in SCHEMES:
        raise ValueError(f"scheme must be one of {', '.join(SCHEMES)}, got {scheme!r}")
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
