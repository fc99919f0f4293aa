"""A confidence interval for micro entity F1 by resampling sentences (the percentile bootstrap).

Entity F1 is not a mean over sentences, so its uncertainty has no closed form; resampling whole
sentences with replacement keeps the entities of a sentence together (the percentile bootstrap
of Efron & Tibshirani, "An Introduction to the Bootstrap", 1993). Each resample sums the
per-sentence counts of gold, predicted and correct entities and computes F1 from the sums, so
every resample is scored exactly as `evaluate_tags` scores the corpus.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ner_imbalance.evaluation.scores import sentence_entities

RESAMPLES_PER_CHUNK = 1000


def bootstrap_f1(
    gold: Sequence[Sequence[str]],
    pred: Sequence[Sequence[str]],
    *,
    resamples: int,
    seed: int = 0,
    confidence: float = 0.95,
    mode: str = "conlleval",
    scheme: str = "IOB2",
) -> dict[str, float]:
    """Micro F1 of the corpus and the `confidence` percentile interval of F1 over `resamples` resamples.

    Returns `f1`, `low`, `high`, `resamples`, `seed` and `confidence`. The same `seed` gives the
    same interval.
    """
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold sentences but {len(pred)} predicted")
    if not gold:
        raise ValueError("nothing to resample: no sentences")
    for number, (gold_tags, pred_tags) in enumerate(zip(gold, pred), start=1):
        if len(gold_tags) != len(pred_tags):
            raise ValueError(f"sentence {number}: {len(gold_tags)} gold tags but {len(pred_tags)} predicted")
    counts = _sentence_counts(gold, pred, mode, scheme)
    generator = np.random.default_rng(seed)
    scores = []
    for first in range(0, resamples, RESAMPLES_PER_CHUNK):
        size = min(RESAMPLES_PER_CHUNK, resamples - first)
        drawn = generator.integers(0, len(counts), size=(size, len(counts)))
        scores.append(_f1(counts[drawn].sum(axis=1)))
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(np.concatenate(scores), [tail, 100 - tail])
    return {
        "f1": float(_f1(counts.sum(axis=0, keepdims=True))[0]),
        "low": float(low),
        "high": float(high),
        "resamples": resamples,
        "seed": seed,
        "confidence": confidence,
    }


def _sentence_counts(
    gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], mode: str, scheme: str
) -> np.ndarray:
    """`[sentences, 3]`: gold, predicted and correct entities of every sentence."""
    gold_entities = sentence_entities(gold, mode=mode, scheme=scheme)
    pred_entities = sentence_entities(pred, mode=mode, scheme=scheme)
    return np.array(
        [[len(g), len(p), len(set(g) & set(p))] for g, p in zip(gold_entities, pred_entities)], dtype=np.int64
    ).reshape(-1, 3)


def _f1(totals: np.ndarray) -> np.ndarray:
    """F1 from rows of (gold, predicted, correct) totals: 2 correct / (gold + predicted), 0 when both are 0."""
    gold, predicted, correct = totals[:, 0], totals[:, 1], totals[:, 2]
    denominator = gold + predicted
    return np.where(denominator > 0, 2 * correct / np.maximum(denominator, 1), 0.0)
