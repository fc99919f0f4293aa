"""Exact per-type entity counts of label-id sequences, as seqeval's conlleval chunking finds them.

`calibration.search_bias` scores thousands of candidate biases on the same dev words; calling
`evaluate_tags` (seqeval on tag strings) for each would dominate its time. `EntityCounter` counts
gold, predicted and correct entities per type directly on label ids, with seqeval's own
`start_of_chunk` / `end_of_chunk` turned into lookup tables (`ChunkTables`), looking only at the
transitions next to non-`O` words; counts are additive over sentences, so a caller can re-count
just the sentences a change touches. `micro_scores`, `macro_f1` and `precision_recall_f1` turn
counts into the numbers `ner_imbalance.evaluation.scores` computes (same operations, so the same floats);
tests check them against `evaluate_tags` exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from seqeval.metrics.sequence_labeling import end_of_chunk, start_of_chunk

from ner_imbalance.constants import OUTSIDE
from ner_imbalance.tags import conlleval_split


class ChunkTables:
    """seqeval's conlleval chunking as lookup tables over label ids.

    State ids are the labels' ids, then `separator` (the `O` seqeval puts between flattened
    sentences) and `start` (its initial state: tag `O`, empty type). `starts[p, c]` / `ends[p, c]`
    are seqeval's own `start_of_chunk` / `end_of_chunk` for previous state `p`, current state `c`;
    `state_type` is the index in `types` (sorted) of each state's entity type. `inert[label]`:
    the label reads exactly as the separator (`O`): no chunk starts or ends between two of them.
    """

    def __init__(self, label_list: Sequence[str]) -> None:
        states = [conlleval_split(label) for label in label_list] + [conlleval_split(OUTSIDE), (OUTSIDE, "")]
        self.separator, self.start = len(label_list), len(label_list) + 1
        self.starts = np.array([[start_of_chunk(p, t, pt, tt) for t, tt in states] for p, pt in states])
        self.ends = np.array([[end_of_chunk(p, t, pt, tt) for t, tt in states] for p, pt in states])
        self.num_states = len(states)
        self.inert = np.array([state == states[self.separator] for state in states[: len(label_list)]])
        quiet = np.flatnonzero(np.concatenate((self.inert, [True, True])))
        if (self.starts | self.ends)[np.ix_(quiet, quiet)].any():
            raise AssertionError("seqeval's chunking changed: a chunk starts or ends between two O tags")
        self.starts_flat, self.ends_flat = self.starts.ravel(), self.ends.ravel()
        self.types = sorted({entity_type for _tag, entity_type in states})
        self.state_type = np.array([self.types.index(entity_type) for _tag, entity_type in states], dtype=np.int64)


class EntityCounter:
    """Per-type gold, predicted and correct entity counts of label-id sequences, as seqeval's
    conlleval chunking (`get_entities`) finds them, against fixed gold sequences.

    Words are laid out sentence after sentence with one `O` between sentences, as seqeval
    flattens nested lists, and chunk starts and ends are looked up in `ChunkTables`. Counts are
    additive over sentences (no entity crosses a separator), which `calibration.scan.BiasScan.ascend` relies on:
    it counts the sentences a bias changes (`select`, each version once, `sentence_counts`) and adds them up.
    """

    def __init__(self, gold_ids: np.ndarray, lengths: Sequence[int], tables: ChunkTables) -> None:
        self.tables = tables
        self.gold_ids = np.asarray(gold_ids, dtype=np.int64)
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.num_words = int(self.lengths.sum())
        self.sentence_of_word = np.repeat(np.arange(len(self.lengths)), self.lengths)
        # Position of every word in the layout: a leading start state, then each sentence and an O.
        self.positions = 1 + np.arange(self.num_words) + self.sentence_of_word
        self.size = 1 + self.num_words + len(self.lengths)
        gold_keys, self.gold_types, self.gold_ends = self._entities(self.gold_ids)
        # Entities do not overlap: the one gold entity ending at each position, if any.
        self.gold_key_ending_at = np.full(self.size, -1, dtype=np.int64)
        self.gold_key_ending_at[self.gold_ends] = gold_keys
        self.gold_counts = np.bincount(self.gold_types, minlength=len(tables.types))

    def select(self, sentences: np.ndarray) -> EntityCounter:
        """The counter of the sentences `sentences` (indices, in that order; one may come more than once)."""
        return EntityCounter(self.gold_ids[self.words_of(sentences)], self.lengths[sentences], self.tables)

    def words_of(self, sentences: np.ndarray) -> np.ndarray:
        """The indices of the words of `sentences` (indices, repeats allowed), sentence after sentence."""
        lengths = self.lengths[sentences]
        first_words = (np.cumsum(self.lengths) - self.lengths)[sentences]
        return np.repeat(first_words - (np.cumsum(lengths) - lengths), lengths) + np.arange(lengths.sum())

    def counts(self, predicted_ids: np.ndarray) -> np.ndarray:
        """`[3, num_types]` int64: gold, predicted and correct entities of each type."""
        keys, types, ends = self._entities(predicted_ids)
        correct = self.gold_key_ending_at[ends] == keys
        num_types = len(self.tables.types)
        return np.stack(
            [
                self.gold_counts,
                np.bincount(types, minlength=num_types),
                np.bincount(types[correct], minlength=num_types),
            ]
        )

    def sentence_counts(self, predicted_ids: np.ndarray) -> np.ndarray:
        """`[num_sentences, 3, num_types]` int64: `counts` of each sentence alone (summed over sentences: `counts`)."""
        keys, types, ends = self._entities(predicted_ids)
        correct = self.gold_key_ending_at[ends] == keys
        # The position of each sentence's first word (of the separator after it, for an empty sentence).
        first_positions = 1 + np.cumsum(self.lengths) - self.lengths + np.arange(len(self.lengths))
        num_types, num_sentences = len(self.tables.types), len(self.lengths)

        def per_sentence(entity_types: np.ndarray, entity_ends: np.ndarray) -> np.ndarray:
            sentences = np.searchsorted(first_positions, entity_ends, side="right") - 1
            cells = np.bincount(sentences * num_types + entity_types, minlength=num_sentences * num_types)
            return cells.reshape(num_sentences, num_types)

        return np.stack(
            [
                per_sentence(self.gold_types, self.gold_ends),
                per_sentence(types, ends),
                per_sentence(types[correct], ends[correct]),
            ],
            axis=1,
        )

    def _entities(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Unique integer keys (start, end, type), type indices and end positions of the entities of `ids`.

        Only transitions next to a word whose label is not inert (not `O`) can start or end a
        chunk, so only those are looked up: into every such word from its left neighbour, and
        out of it into an inert right neighbour.
        """
        tables = self.tables
        words = np.flatnonzero(~tables.inert[ids])
        if not len(words):
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        positions = self.positions[words]
        states = ids[words]
        follows = positions[1:] == positions[:-1] + 1
        inert_left = np.where(positions == 1, tables.start, tables.separator)
        left = np.where(np.concatenate(([False], follows)), np.concatenate(([0], states[:-1])), inert_left)
        into = left * tables.num_states + states
        leaving = ~np.concatenate((follows, [False]))
        out_of = states[leaving] * tables.num_states + tables.separator
        # A chunk ending on the transition into position q ends at q - 1.
        ends_into, ends_out = tables.ends_flat[into], tables.ends_flat[out_of]
        end_positions = np.concatenate((positions[ends_into] - 1, positions[leaving][ends_out]))
        end_states = np.concatenate((left[ends_into], states[leaving][ends_out]))
        start_positions = positions[tables.starts_flat[into]]
        begins = start_positions[np.searchsorted(start_positions, end_positions, side="right") - 1]
        types = tables.state_type[end_states]
        keys = (begins * self.size + end_positions) * len(tables.types) + types
        return keys, types, end_positions


def micro_scores(counts: np.ndarray) -> tuple[float, float, float]:
    gold, predicted, correct = (int(value) for value in counts.sum(axis=1))
    return precision_recall_f1(correct, predicted, gold)


def macro_f1(counts: np.ndarray) -> float:
    present = np.flatnonzero((counts[0] > 0) | (counts[1] > 0))
    if not len(present):
        return 0.0
    f1s = [precision_recall_f1(int(counts[2, t]), int(counts[1, t]), int(counts[0, t]))[2] for t in present]
    return sum(f1s) / len(f1s)


def precision_recall_f1(correct: int, predicted: int, support: int) -> tuple[float, float, float]:
    """Precision, recall and F1 from entity counts; a ratio with a zero denominator is 0, as in conlleval.

    The one home of these formulas: `scores.evaluate_tags` and the calibration's counts both use it.
    """
    precision = correct / predicted if predicted else 0.0
    recall = correct / support if support else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def tag_ids(gold_tags: Sequence[Sequence[str]], label_list: Sequence[str]) -> np.ndarray:
    label2id = {label: index for index, label in enumerate(label_list)}
    try:
        return np.array([label2id[tag] for tags in gold_tags for tag in tags], dtype=np.int64)
    except KeyError as error:
        raise ValueError(f"gold tag {error.args[0]!r} is not in label_list ({len(label_list)} labels)") from None
