"""One run's dev taggings scored on label ids: `evaluate_tags` and `sentence_type_counts`, each tagging once.

The report scores many taggings of the same dev words (the stored predictions, argmax and Viterbi
re-decodings, cross-fitted calibrations), and several of them are often the same tagging.
`DevScorer` holds the run's gold entities (`evaluation.entity_counts.EntityCounter`, seqeval's
conlleval chunking on label ids) and scores each distinct tagging once (kept by the bytes of its
label ids): the `evaluate_tags` dict (`evaluation.scores.scores_from_counts`) and the per-sentence,
per-type counts the paired bootstrap resamples, both from one extraction of its entities.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ner_imbalance.evaluation.entity_counts import ChunkTables, EntityCounter
from ner_imbalance.evaluation.scores import scores_from_counts
from ner_imbalance.study.records import DevOutputs


@dataclass(frozen=True)
class ScoredTagging:
    """A tagging's `evaluate_tags` scores and `type_counts`, equal to
    `evaluation.bootstrap.sentence_type_counts(gold, predicted, list(scores["per_type"]))`:
    `[num_sentences, num_types, 3]`, correct, predicted and gold entities of each type found in gold
    or predictions (sorted) in each sentence."""

    scores: dict[str, Any]
    type_counts: np.ndarray

    @property
    def counts(self) -> np.ndarray:
        """`[num_sentences, 3]`: `evaluation.bootstrap.sentence_counts`, summed over types."""
        return self.type_counts.sum(axis=1)


class DevScorer:
    """Scores label-id taggings of one run's dev words against its gold, as `evaluate_tags` (conlleval mode)."""

    def __init__(self, outputs: DevOutputs) -> None:
        self.gold = np.asarray(outputs.gold, dtype=np.int64)
        self.counter = EntityCounter(self.gold, outputs.sentence_lengths, ChunkTables(outputs.labels))
        self._scored: dict[bytes, ScoredTagging] = {}

    def __call__(self, predicted: np.ndarray) -> ScoredTagging:
        """The scores of `predicted` (one label id per dev word), computed once per distinct tagging."""
        predicted = np.asarray(predicted, dtype=np.int64)
        key = predicted.tobytes()
        if key not in self._scored:
            self._scored[key] = self._score(predicted)
        return self._scored[key]

    def _score(self, predicted: np.ndarray) -> ScoredTagging:
        sentence_counts = self.counter.sentence_counts(predicted)  # [sentence, (gold, predicted, correct), type]
        gold, found, correct = sentence_counts.sum(axis=0)
        present = np.flatnonzero((gold > 0) | (found > 0))
        types = self.counter.tables.types
        scores = scores_from_counts(
            {types[t]: (gold[t], found[t], correct[t]) for t in present},
            tokens=len(predicted),
            correct_tokens=np.count_nonzero(predicted == self.gold),
        )
        type_counts = np.ascontiguousarray(sentence_counts[:, ::-1, present].transpose(0, 2, 1))
        return ScoredTagging(scores, type_counts)
