"""Paired comparisons with CE over dev sentences: per-sentence entity counts and a paired bootstrap.

For one run, `sentence_counts` gives per dev sentence the numbers of correct, predicted and gold
entities (conlleval chunking, as `evaluation.evaluate_tags`); micro F1 of any sample of
sentences is `2 * correct / (predicted + gold)` of their sums. `paired_bootstrap` resamples dev
sentences with replacement (seeded) and, in each resample, takes the mean over seeds of
F1(setting, seed s) - F1(CE, seed s) on the same sentences: the percentile interval of that mean
difference is the paired 95 % interval.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from seqeval.metrics.sequence_labeling import get_entities

from ner_imbalance.study.records import DevOutputs

BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0


def sentence_counts(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> np.ndarray:
    """`[num_sentences, 3]`: correct, predicted and gold entities of each sentence."""
    counts = np.zeros((len(gold), 3), dtype=np.int64)
    for row, (gold_tags, predicted_tags) in enumerate(zip(gold, predicted)):
        gold_entities, predicted_entities = set(get_entities(list(gold_tags))), set(get_entities(list(predicted_tags)))
        counts[row] = len(gold_entities & predicted_entities), len(predicted_entities), len(gold_entities)
    return counts


def run_counts(outputs: DevOutputs) -> np.ndarray:
    """`sentence_counts` of a run's stored dev predictions."""
    return sentence_counts(outputs.tags(outputs.gold), outputs.tags(outputs.predicted))


def micro_f1(counts: np.ndarray) -> np.ndarray:
    """Micro F1 from summed counts `[..., 3]` (0 where nothing was predicted or gold)."""
    correct, predicted, gold = counts[..., 0], counts[..., 1], counts[..., 2]
    denominator = predicted + gold
    return np.divide(2.0 * correct, denominator, out=np.zeros(np.shape(correct), dtype=float), where=denominator > 0)


def paired_bootstrap(
    setting: Sequence[np.ndarray],
    reference: Sequence[np.ndarray],
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    confidence: float = 0.95,
) -> tuple[float, float]:
    """Percentile interval of the mean over seeds of the micro-F1 difference, resampling sentences.

    `setting[i]` and `reference[i]` are the `sentence_counts` of the same seed, on the same dev
    sentences in the same order.
    """
    if len(setting) != len(reference) or not setting:
        raise ValueError(f"paired seeds needed: {len(setting)} runs of the setting, {len(reference)} of the reference")
    sizes = {len(counts) for counts in (*setting, *reference)}
    if len(sizes) != 1:
        raise ValueError(f"the runs scored different numbers of dev sentences: {sorted(sizes)}")
    num_sentences = sizes.pop()
    samples = np.random.default_rng(seed).integers(0, num_sentences, size=(resamples, num_sentences))
    differences = np.zeros(resamples)
    for setting_counts, reference_counts in zip(setting, reference):
        differences += micro_f1(setting_counts[samples].sum(axis=1)) - micro_f1(reference_counts[samples].sum(axis=1))
    differences /= len(setting)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(differences, [tail, 100 - tail])
    return float(low), float(high)
