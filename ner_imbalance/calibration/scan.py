"""Scoring candidate biases on fixed dev logits: the scans `search.search_bias` climbs with.

`BiasScan` scores a bias vector, or every value of one label's bias on a grid with the others
fixed, under the run's decoding, from the word-level logits and exact entity counts
(`evaluation.entity_counts.EntityCounter`), never with a forward pass. Under argmax a word
switches to the label at one grid value, so only its sentence is re-counted there
(`_argmax_scan`); under Viterbi a sentence's best path is constant between two grid values where
it is the same, so the grid is bisected over the sentences whose path still differs
(`_sentence_scan`). The reasoning is in `search`'s module docstring.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ner_imbalance.calibration.objective import Objective
from ner_imbalance.constants import ARGMAX
from ner_imbalance.decoding import decode
from ner_imbalance.evaluation.entity_counts import EntityCounter, macro_f1, micro_scores


class Decoder:
    """`ner_imbalance.decoding.decode` with the label list, scheme and method fixed."""

    def __init__(self, label_list: Sequence[str], scheme: str, method: str) -> None:
        self.label_list, self.scheme, self.method = list(label_list), scheme, method

    def __call__(self, biased_logits: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        return decode(biased_logits, lengths, self.label_list, scheme=self.scheme, method=self.method)


class BiasScan:
    """Scores biases on the fixed dev logits under a decoding; counts the candidates scored."""

    def __init__(self, logits: np.ndarray, counter: EntityCounter, objective: Objective, decoder: Decoder) -> None:
        self.logits = logits
        self.columns = np.ascontiguousarray(logits.T)
        self.counter = counter
        self.objective = objective
        self.decoder = decoder
        self.candidates = 0
        self._word_starts = np.cumsum(counter.lengths) - counter.lengths

    def predict(self, bias: np.ndarray) -> np.ndarray:
        """Label ids of every word under the bias (`x + b` in the logits' float32, as the model's head adds it)."""
        return self.decoder(self.logits + bias.astype(self.logits.dtype), self.counter.lengths)

    def score(self, bias: np.ndarray) -> float:
        self.candidates += 1
        return self.objective(self.counter.counts(self.predict(bias)))

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
        scores[0] = self.objective(counts)
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
            scores[step] = self.objective(counts)
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
        return np.array([self.objective(step_counts) for step_counts in counts])


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
