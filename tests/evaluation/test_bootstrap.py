"""`paired_bootstrap` with one tagging paired with each of several: resampled and scored once, the same interval."""

from __future__ import annotations

import numpy as np
import pytest

from ner_imbalance.evaluation.bootstrap import macro_f1, micro_f1, paired_bootstrap


@pytest.mark.parametrize("score", [micro_f1, macro_f1])
def test_one_tagging_against_the_mean_of_several_on_each_resample(score):
    generator = np.random.default_rng(3)
    shape = (41, 3) if score is micro_f1 else (41, 4, 3)
    ensemble, *seeds = (generator.integers(0, 4, size=shape) for _ in range(4))
    shared = paired_bootstrap([ensemble] * 3, seeds, score=score, resamples=400)
    assert shared == paired_bootstrap([ensemble.copy() for _ in seeds], seeds, score=score, resamples=400)
    # Written plainly: the same draws, the ensemble's score minus the mean of the seeds' scores on each resample.
    drawn = np.random.default_rng(0).integers(0, len(ensemble), size=(400, len(ensemble)))
    differences = score(ensemble[drawn].sum(axis=1)) - np.mean([score(seed[drawn].sum(axis=1)) for seed in seeds], 0)
    assert shared == pytest.approx(tuple(np.percentile(differences, [2.5, 97.5])), abs=1e-12)
