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
from dataclasses import dataclass

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

    def __init__(
        self,
        logits: np.ndarray,
        counter: EntityCounter,
        objective: Objective,
        decoder: Decoder,
        unbiased: np.ndarray | None = None,
    ) -> None:
        """`unbiased`: the decoder's labels of the logits as they are, when the caller has decoded them
        already (the uncalibrated counts of `objective`), kept as the zero bias's prediction."""
        self.logits = logits
        self.columns = np.ascontiguousarray(logits.T)
        self.counter = counter
        self.objective = objective
        self.decoder = decoder
        self.candidates = 0
        self._predicted: dict[bytes, np.ndarray] = {}
        if unbiased is not None:
            self._predicted[np.zeros(logits.shape[1], dtype=logits.dtype).tobytes()] = unbiased
            unbiased.setflags(write=False)

    def predict(self, bias: np.ndarray) -> np.ndarray:
        """Label ids of every word under the bias (`x + b` in the logits' float32, as the model's head adds it);
        each bias decoded once (the search scores the zero bias, and its final bias, more than once)."""
        biased = bias.astype(self.logits.dtype)
        key = biased.tobytes()
        if key not in self._predicted:
            self._predicted[key] = self.decoder(self.logits + biased, self.counter.lengths)
            self._predicted[key].setflags(write=False)
        return self._predicted[key]

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
        scores = self.grid_scores(bias, label, grid)
        self.candidates += len(grid)
        best = scores.max()
        closest = np.flatnonzero(scores == best)[np.argmin(np.abs(grid[scores == best] - bias[label]))]
        if best > current and best - current >= margin:
            moved = bias.copy()
            moved[label] = grid[closest]
            return moved, float(best)
        return bias, current

    def grid_scores(self, bias: np.ndarray, label: int, grid: np.ndarray) -> np.ndarray:
        """The objective at every value of `bias[label]` on `grid` (the other biases fixed): `score` of each
        such bias, found without decoding every sentence at every grid value."""
        if self.decoder.method == ARGMAX:
            return self._argmax_scan(bias, label, grid)
        return self._sentence_scan(bias, label, grid)

    def _argmax_scan(self, bias: np.ndarray, label: int, grid: np.ndarray) -> np.ndarray:
        """The metric at every grid value of `bias[label]` under argmax decoding.

        With the other biases fixed, `argmax(x + b)` is `label` exactly where `x_label + v`
        beats the largest earlier biased logit and ties or beats the largest later one (arg-max
        takes the first maximum), else the arg-max of the other labels. As `v` grows, words only
        switch to `label`; each word switches at one grid step. So a sentence's tags change only
        at the steps where one of its words switches: each sentence with a switching word is
        counted at the first grid value and after each of its switching steps (all in one batch),
        and each change of its counts is added to the totals from its step on.
        """
        counter = self.counter
        rule = _OneLabelRule(self.columns, bias, label)
        predicted = rule.predict(grid[0])
        switching = np.flatnonzero(predicted != rule.predict(grid[-1]))
        switch_rule = rule.subset(switching)
        switch_step = np.zeros(len(switching), dtype=np.int64)
        for step in range(len(grid) - 1, 0, -1):
            switch_step[switch_rule.wins(grid[step])] = step
        changes = np.zeros((len(grid), 3, len(counter.tables.types)), dtype=np.int64)
        if len(switching):
            switching_sentences = counter.sentence_of_word[switching]
            # (sentence, step): each such sentence at step 0 and at each step one of its words switches, in order.
            keys = switching_sentences * len(grid)
            sentences, steps = np.divmod(np.unique(np.concatenate((keys, keys + switch_step))), len(grid))
            switches_at = np.full(counter.num_words, len(grid), dtype=np.int64)
            switches_at[switching] = switch_step
            words = counter.words_of(sentences)
            tags = np.where(switches_at[words] <= np.repeat(steps, counter.lengths[sentences]), label, predicted[words])
            counts = counter.select(sentences).sentence_counts(tags)
            changed = sentences[1:] == sentences[:-1]
            np.add.at(changes, steps[1:][changed], (counts[1:] - counts[:-1])[changed])
        totals = counter.counts(predicted) + np.cumsum(changes, axis=0)
        return np.array([self.objective(step_counts) for step_counts in totals])

    def _sentence_scan(self, bias: np.ndarray, label: int, grid: np.ndarray) -> np.ndarray:
        """The metric at every grid value of `bias[label]` under a sentence-level decoding (Viterbi).

        A sentence whose best path is the same at two grid values keeps it in between (see the
        module docstring). So every sentence is decoded at both ends of the grid; those whose path
        differs are decoded at the middle of the grid and the halves are searched the same way,
        each with only its sentences whose path still differs between its ends (bisection, breadth
        first: the sentences of one level, each at its own grid value, are decoded in one batch).
        A sentence is decoded about (times its path changes) x log2(grid size) times, not once per
        grid value. Each path found constant on a stretch of the grid is counted once (all in one
        batch) and its counts are added to that whole stretch.
        """
        counter = self.counter
        last = len(grid) - 1
        every = np.arange(len(counter.lengths))
        starts, ends = np.zeros_like(every), np.full_like(every, last)
        # Both ends of the grid in one batch: every sentence at grid index 0, then every sentence at the last.
        at_both = self._decode_at(bias, label, grid, np.concatenate((every, every)), np.concatenate((starts, ends)))
        at_low, at_high = at_both[: counter.num_words], at_both[counter.num_words :]
        settled = [_Stretches(every, ends, ends + 1, at_high, at_high)]
        searched = _Stretches(every, starts, ends, at_low, at_high)
        while last and len(searched.sentences):
            lengths = counter.lengths[searched.sentences]
            done = (searched.stop - searched.first == 1) | _same_per_sentence(
                searched.at_first, searched.at_stop, lengths
            )
            settled.append(searched.where(done, lengths))
            searched = searched.where(~done, lengths)
            if len(searched.sentences):
                middle = (searched.first + searched.stop) // 2
                searched = searched.halves(middle, self._decode_at(bias, label, grid, searched.sentences, middle))
        stretches = _Stretches.concatenate(settled)
        counts = counter.select(stretches.sentences).sentence_counts(stretches.at_first)
        differences = np.zeros((len(grid) + 1, *counts.shape[1:]), dtype=np.int64)
        np.add.at(differences, stretches.first, counts)
        np.add.at(differences, stretches.stop, -counts)
        return np.array([self.objective(step_counts) for step_counts in np.cumsum(differences[:-1], axis=0)])

    def _decode_at(
        self, bias: np.ndarray, label: int, grid: np.ndarray, sentences: np.ndarray, steps: np.ndarray
    ) -> np.ndarray:
        """The label ids of `sentences` (indices, repeats allowed), each decoded with `bias[label]` set to its
        own grid value `grid[steps[i]]`, in one batch (a sentence's path does not depend on the others)."""
        lengths = self.counter.lengths[sentences]
        candidates = np.repeat(bias[None, :], len(sentences), axis=0)
        candidates[:, label] = grid[steps]
        candidates = candidates.astype(self.logits.dtype)
        return self.decoder(
            self.logits[self.counter.words_of(sentences)] + np.repeat(candidates, lengths, axis=0), lengths
        )


@dataclass(frozen=True)
class _Stretches:
    """Sentences (indices, repeats allowed), each with a stretch of grid indices `first[i]` to `stop[i]` and its
    paths at both ends (`at_first`, `at_stop`: one label id per word, the sentences concatenated).

    A settled stretch has one path throughout: `at_first`, on `first[i]` to `stop[i] - 1`.
    """

    sentences: np.ndarray
    first: np.ndarray
    stop: np.ndarray
    at_first: np.ndarray
    at_stop: np.ndarray

    def where(self, keep: np.ndarray, lengths: np.ndarray) -> _Stretches:
        """The stretches where `keep` (one per sentence); `lengths` are the sentences' numbers of words."""
        words = np.repeat(keep, lengths)
        return _Stretches(
            self.sentences[keep], self.first[keep], self.stop[keep], self.at_first[words], self.at_stop[words]
        )

    def halves(self, middle: np.ndarray, at_middle: np.ndarray) -> _Stretches:
        """Each stretch cut at `middle`, whose paths are `at_middle`: all first halves, then all second halves."""
        return _Stretches.concatenate(
            [
                _Stretches(self.sentences, self.first, middle, self.at_first, at_middle),
                _Stretches(self.sentences, middle, self.stop, at_middle, self.at_stop),
            ]
        )

    @staticmethod
    def concatenate(parts: Sequence[_Stretches]) -> _Stretches:
        fields = ((part.sentences, part.first, part.stop, part.at_first, part.at_stop) for part in parts)
        return _Stretches(*(np.concatenate(field) for field in zip(*fields)))


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
