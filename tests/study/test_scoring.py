"""`DevScorer` scores a run's dev taggings on label ids exactly as `evaluate_tags` and `sentence_type_counts`
score the tag strings, and each distinct tagging once."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from study_records import random_dev_outputs

from ner_imbalance.evaluation import evaluate_tags
from ner_imbalance.evaluation.bootstrap import sentence_counts, sentence_type_counts
from ner_imbalance.study.records import DevOutputs
from ner_imbalance.study.scoring import DevScorer

LABEL_LISTS = {
    "iob2": ["B-PER", "I-PER", "B-LOC", "I-LOC", "O"],
    "iobes": ["O", "B-PER", "I-PER", "E-PER", "S-PER", "S-creative-work"],
    "lenient": ["O", "B-PER", "I-PER", "B-", "I", "PER", "E--X", "Ofoo"],
}


def taggings(outputs: DevOutputs, seed: int) -> list[np.ndarray]:
    """The stored predictions, the gold itself, no entity at all, and random changes of the predictions."""
    generator = np.random.default_rng(seed)
    changed = np.where(generator.random(len(outputs.gold)) < 0.3, generator.integers(0, len(outputs.labels)), 0)
    outside = outputs.labels.index("O")
    return [
        outputs.predicted,
        outputs.gold,
        np.full(len(outputs.gold), outside),
        np.where(changed > 0, changed, outputs.predicted),
    ]


@pytest.mark.parametrize("name", sorted(LABEL_LISTS))
@pytest.mark.parametrize("seed", range(3))
def test_scores_and_counts_equal_those_of_the_tag_strings(name, seed):
    outputs = random_dev_outputs(seed, LABEL_LISTS[name], num_sentences=30)
    scorer = DevScorer(outputs)
    gold = outputs.tags(outputs.gold)
    for predicted_ids in taggings(outputs, seed):
        predicted = outputs.tags(predicted_ids)
        scored = scorer(predicted_ids)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # seqeval warns about labels that are not NE tags
            expected = evaluate_tags(gold, predicted)
            type_counts = sentence_type_counts(gold, predicted, list(expected["per_type"]))
            counts = sentence_counts(gold, predicted)
        assert scored.scores == expected
        assert list(scored.scores["per_type"]) == list(expected["per_type"])
        assert all(type(value) is type(expected[key]) for key, value in scored.scores.items())
        np.testing.assert_array_equal(scored.type_counts, type_counts)
        assert scored.type_counts.dtype == type_counts.dtype and scored.type_counts.flags.c_contiguous
        np.testing.assert_array_equal(scored.counts, counts)


def test_each_distinct_tagging_is_scored_once():
    outputs = random_dev_outputs(0, LABEL_LISTS["iob2"])
    scorer = DevScorer(outputs)
    first = scorer(outputs.predicted)
    assert scorer(outputs.predicted.astype(np.int16)) is first, "the same label ids, another dtype"
    other = outputs.predicted.copy()
    other[0] = (other[0] + 1) % len(outputs.labels)
    assert scorer(other) is not first
