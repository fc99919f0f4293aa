"""`BiasScan.grid_scores` (batched scans of one label's bias) equals scoring every grid value by decoding all of dev."""

from __future__ import annotations

import numpy as np
import pytest

from ner_imbalance.calibration.objective import Objective
from ner_imbalance.calibration.scan import BiasScan, Decoder
from ner_imbalance.evaluation.entity_counts import ChunkTables, EntityCounter

LABEL_LISTS = {
    "iob2": ["O", "B-LOC", "I-LOC", "B-PER", "I-PER", "B-product", "I-product"],
    "iobes": ["O", "B-LOC", "I-LOC", "E-LOC", "S-LOC", "B-PER", "I-PER", "E-PER", "S-PER"],
}


def _scan(labels: list[str], scheme: str, method: str, metric: str, seed: int) -> BiasScan:
    """Random logits (O favoured, ties included) against random gold, empty sentences included."""
    generator = np.random.default_rng(seed)
    lengths = generator.integers(0, 12, size=60)
    logits = np.round(generator.normal(size=(int(lengths.sum()), len(labels))), 1).astype(np.float32)
    logits[:, 0] += 1.0
    gold = np.where(generator.random(len(logits)) < 0.6, 0, generator.integers(0, len(labels), len(logits)))
    counter = EntityCounter(gold, lengths, ChunkTables(labels))
    decoder = Decoder(labels, scheme, method)
    objective = Objective(metric, counter.counts(decoder(logits, counter.lengths)))
    return BiasScan(logits, counter, objective, decoder)


@pytest.mark.parametrize("scheme", sorted(LABEL_LISTS))
@pytest.mark.parametrize("method", ["argmax", "viterbi"])
@pytest.mark.parametrize("metric", ["micro_f1", "macro_f1", "micro_f1_keep_recall"])
def test_grid_scores_equal_scoring_each_grid_value(scheme, method, metric):
    labels = LABEL_LISTS[scheme]
    grid = np.round(np.arange(-12, 13) * 0.25, 10)
    for seed in range(3):
        scan = _scan(labels, scheme, method, metric, seed)
        bias = np.round(np.random.default_rng(seed).normal(scale=0.5, size=len(labels)), 1)
        for label in range(len(labels)):
            expected = []
            for value in grid:
                moved = bias.copy()
                moved[label] = value
                expected.append(scan.score(moved))
            np.testing.assert_array_equal(scan.grid_scores(bias, label, grid), expected)


def test_the_unbiased_labels_a_caller_decoded_are_the_zero_bias_prediction():
    """search_bias decodes the logits once for the uncalibrated counts; the scan reuses them for the zero bias."""
    labels = LABEL_LISTS["iob2"]
    scan = _scan(labels, "IOB2", "viterbi", "micro_f1", seed=0)
    unbiased = scan.decoder(scan.logits, scan.counter.lengths)
    seeded = BiasScan(scan.logits, scan.counter, scan.objective, scan.decoder, unbiased=unbiased)
    assert seeded.predict(np.zeros(len(labels))) is unbiased
    assert seeded.score(np.zeros(len(labels))) == scan.score(np.zeros(len(labels)))
