"""Confidence intervals for entity F1 by resampling sentences: plain and paired percentile bootstraps.

Entity F1 is not a mean over sentences, so its uncertainty has no closed form; resampling whole
sentences with replacement keeps the entities of a sentence together (the percentile bootstrap
of Efron & Tibshirani, "An Introduction to the Bootstrap", 1993). `sentence_counts` gives each
sentence's numbers of correct, predicted and gold entities (found as `evaluate_tags` finds them);
micro F1 of any sample of sentences is `2 * correct / (predicted + gold)` of their sums
(`micro_f1`), so every resample is scored exactly as `evaluate_tags` scores the corpus.

Macro F1 is resampled the same way from counts kept per type (`sentence_type_counts`,
`[num_sentences, num_types, 3]`): the F1 of type c on a sample is `2 * correct_c / (predicted_c +
gold_c)`, and `macro_f1` their unweighted mean over the types of the whole corpus (a type absent
from a resample scores 0 there), which on the whole corpus is `evaluate_tags`' `macro_f1`.

`bootstrap_f1` is the interval of one tagging's F1; `paired_bootstrap` the interval of a mean
difference of micro (or, with `score=macro_f1`, macro) F1 between paired taggings (the same
seeds, the same sentences), resampling the same sentences for both sides.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import numpy as np

from ner_imbalance.evaluation.scores import sentence_entities

RESAMPLES_PER_CHUNK = 1000
PAIRED_RESAMPLES = 2000
PAIRED_SEED = 0


def sentence_counts(
    gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], *, mode: str = "conlleval", scheme: str = "IOB2"
) -> np.ndarray:
    """`[num_sentences, 3]`: correct, predicted and gold entities of each sentence (of every type)."""
    return sentence_type_counts(gold, pred, mode=mode, scheme=scheme).sum(axis=1)


def sentence_type_counts(
    gold: Sequence[Sequence[str]],
    pred: Sequence[Sequence[str]],
    types: Sequence[str] | None = None,
    *,
    mode: str = "conlleval",
    scheme: str = "IOB2",
) -> np.ndarray:
    """`[num_sentences, len(types), 3]`: correct, predicted and gold entities of each type in each sentence.

    `types` must name every type found in `gold` or `pred`; None takes those types, sorted. The
    keys of `evaluate_tags`' `per_type` are those types, so `macro_f1` of the summed counts
    equals its `macro_f1`.
    """
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold sentences but {len(pred)} predicted")
    gold_entities = sentence_entities(gold, mode=mode, scheme=scheme)
    pred_entities = sentence_entities(pred, mode=mode, scheme=scheme)
    if types is None:
        types = sorted({span.type for spans in (*gold_entities, *pred_entities) for span in spans})
    column = {name: index for index, name in enumerate(types)}
    counts = np.zeros((len(gold), len(types), 3), dtype=np.int64)
    for sentence, (gold_spans, pred_spans) in enumerate(zip(gold_entities, pred_entities)):
        for field, spans in enumerate((set(gold_spans) & set(pred_spans), pred_spans, gold_spans)):
            for span in spans:
                if span.type not in column:
                    raise ValueError(f"sentence {sentence + 1}: entity type {span.type!r} is not among {list(types)}")
                counts[sentence, column[span.type], field] += 1
    return counts


def micro_f1(counts: np.ndarray) -> np.ndarray:
    """Micro F1 from summed counts `[..., 3]` (correct, predicted, gold); 0 where nothing was predicted or gold."""
    correct, predicted, gold = counts[..., 0], counts[..., 1], counts[..., 2]
    denominator = predicted + gold
    return np.divide(2.0 * correct, denominator, out=np.zeros(np.shape(correct), dtype=float), where=denominator > 0)


def macro_f1(type_counts: np.ndarray) -> np.ndarray:
    """Macro F1 from summed per-type counts `[..., num_types, 3]`: the mean over types of each type's F1."""
    return micro_f1(type_counts).mean(axis=-1)


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
    _check_confidence(confidence)
    if not gold:
        raise ValueError("nothing to resample: no sentences")
    for number, (gold_tags, pred_tags) in enumerate(zip(gold, pred), start=1):
        if len(gold_tags) != len(pred_tags):
            raise ValueError(f"sentence {number}: {len(gold_tags)} gold tags but {len(pred_tags)} predicted")
    counts = sentence_counts(gold, pred, mode=mode, scheme=scheme)
    generator = np.random.default_rng(seed)
    scores = []
    for first in range(0, resamples, RESAMPLES_PER_CHUNK):
        size = min(RESAMPLES_PER_CHUNK, resamples - first)
        drawn = generator.integers(0, len(counts), size=(size, len(counts)))
        scores.append(micro_f1(_resampled(_times_drawn(drawn, len(counts)), counts)))
    low, high = _percentiles(np.concatenate(scores), confidence)
    return {
        "f1": float(micro_f1(counts.sum(axis=0))),
        "low": low,
        "high": high,
        "resamples": resamples,
        "seed": seed,
        "confidence": confidence,
    }


def paired_bootstrap(
    setting: Sequence[np.ndarray],
    reference: Sequence[np.ndarray],
    *,
    score: Callable[[np.ndarray], np.ndarray] = micro_f1,
    resamples: int = PAIRED_RESAMPLES,
    seed: int = PAIRED_SEED,
    confidence: float = 0.95,
) -> tuple[float, float]:
    """Percentile interval of the mean over pairs of the `score` difference, resampling sentences.

    `setting[i]` and `reference[i]` are the per-sentence counts of one pair (the same seed, or the
    same run under two decision rules), on the same sentences in the same order: `sentence_counts`
    for `score=micro_f1`, `sentence_type_counts` for `score=macro_f1` (each side its own types).
    Each resample draws the same sentences for every pair and both sides; its counts are the
    number of times each sentence was drawn times that sentence's counts, summed for every run of
    both sides in one product (`_resampled_each`). A count array given more than once (the same
    object) is resampled and scored once: one tagging paired with each of several (a seed ensemble
    against each of its seeds) gives, on each resample, its score minus the mean of theirs.
    """
    if len(setting) != len(reference) or not setting:
        raise ValueError(f"paired seeds needed: {len(setting)} runs of the setting, {len(reference)} of the reference")
    sizes = {len(counts) for counts in (*setting, *reference)}
    if len(sizes) != 1:
        raise ValueError(f"the runs scored different numbers of dev sentences: {sorted(sizes)}")
    _check_confidence(confidence)
    times_drawn = _paired_times_drawn(sizes.pop(), resamples, seed)
    distinct = list({id(counts): counts for counts in (*setting, *reference)}.values())
    scores = {id(counts): score(sums) for counts, sums in zip(distinct, _resampled_each(times_drawn, distinct))}
    differences = np.zeros(resamples)
    for setting_counts, reference_counts in zip(setting, reference):
        differences += scores[id(setting_counts)] - scores[id(reference_counts)]
    return _percentiles(differences / len(setting), confidence)


def _times_drawn(samples: np.ndarray, num_sentences: int) -> np.ndarray:
    """`[resamples, num_sentences]`: how often each resample of sentence indices drew each sentence."""
    resamples = len(samples)
    rows = np.repeat(np.arange(resamples), samples.shape[1])
    return np.bincount(rows * num_sentences + samples.ravel(), minlength=resamples * num_sentences).reshape(
        resamples, num_sentences
    )


@functools.lru_cache(maxsize=4)
def _paired_times_drawn(num_sentences: int, resamples: int, seed: int) -> np.ndarray:
    """`_times_drawn` of `resamples` draws of `num_sentences` sentence indices from `default_rng(seed)`, as float64.

    Every `paired_bootstrap` of the same dev set, resamples and seed draws the same numbers, so they
    are drawn and counted once (read-only, shared by the calls).
    """
    samples = np.random.default_rng(seed).integers(0, num_sentences, size=(resamples, num_sentences))
    times_drawn = _times_drawn(samples, num_sentences).astype(np.float64)
    times_drawn.setflags(write=False)
    return times_drawn


def _resampled(times_drawn: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """`[resamples, ...]`: the summed counts of each resample (`times_drawn` `[resamples, num_sentences]`).

    A float64 product (BLAS) where `times_drawn` is float: the sums are integers far below 2**53, so
    exact, and every score of them equals the score of the integer sums.
    """
    flat = counts.reshape(len(counts), -1).astype(times_drawn.dtype, copy=False)
    return (times_drawn @ flat).reshape(len(times_drawn), *counts.shape[1:])


def _resampled_each(times_drawn: np.ndarray, runs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """`_resampled(times_drawn, counts)` of each of `runs` (C-contiguous, as `_resampled` gives them), from
    one product: the draws are read once for all runs. The sums are the same integers, so the same floats."""
    flat = [counts.reshape(len(counts), -1) for counts in runs]
    bounds = np.cumsum([0, *(part.shape[1] for part in flat)])
    sums = _resampled(times_drawn, np.concatenate(flat, axis=1))
    return [
        np.ascontiguousarray(sums[:, start:stop]).reshape(len(times_drawn), *counts.shape[1:])
        for start, stop, counts in zip(bounds[:-1], bounds[1:], runs)
    ]


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def _percentiles(values: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)
