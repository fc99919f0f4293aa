"""2-fold cross-fitted decision-bias calibration of a run, from its stored word-level dev logits.

Dev is also the report split, so a bias chosen on all of dev and scored on dev flatters the
calibrated score. Cross-fitting keeps it honest at no extra training: dev sentences are split
into two fixed halves A and B (a seeded permutation of the sentence indices, so every run of a
corpus gets the same halves); `b_A = search_bias(half A)` predicts half B, `b_B` predicts half
A, and the two predicted halves, put back in dev order, are scored together as one dev set
(`evaluate_tags`' scores: entity micro P/R/F1, macro F1, per-type recall, found on label ids by
`scoring.DevScorer`). No sentence is predicted with a bias chosen on it.

The report computes this when it is built, once per run (`dev_runs.DevRuns`): `search_bias` on
the stored logits takes well under a second per run and mode on a dev set of WNUT-17's size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ner_imbalance.calibration.objective import DEFAULT_MACRO_WEIGHT, DEFAULT_METRIC, DEFAULT_RECALL_FLOOR
from ner_imbalance.calibration.scan import Decoder
from ner_imbalance.calibration.search import CALIBRATION_MODES, NO_CALIBRATION, search_bias
from ner_imbalance.constants import ARGMAX
from ner_imbalance.study.records import DevOutputs
from ner_imbalance.study.scoring import DevScorer, ScoredTagging
from ner_imbalance.tags import detect_scheme

CROSSFIT_SEED = 0
"""Seed of the permutation that splits dev sentences into the two calibration halves."""


def dev_halves(num_sentences: int, seed: int = CROSSFIT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """The sentence indices of the two halves (sorted): disjoint, covering `range(num_sentences)`.

    They depend only on the number of sentences and the seed, so every run scored on the same
    dev split gets the same halves.
    """
    if num_sentences < 2:
        raise ValueError(f"cross-fitting needs at least 2 dev sentences, got {num_sentences}")
    order = np.random.default_rng(seed).permutation(num_sentences)
    half = num_sentences // 2
    return np.sort(order[:half]), np.sort(order[half:])


@dataclass(frozen=True)
class CrossFitResult:
    """The pooled cross-fitted predictions of one run and one calibration mode.

    `biases[0]` was chosen on `halves[0]` and predicts `halves[1]`; `biases[1]` the other way
    round. `predicted` holds the pooled label ids, one per dev word in dev order, and `scored` their
    `evaluate_tags` scores and per-sentence counts against the gold (`scoring.ScoredTagging`).
    """

    mode: str
    halves: tuple[np.ndarray, np.ndarray]
    biases: tuple[np.ndarray, np.ndarray]
    predicted: np.ndarray
    scored: ScoredTagging

    @property
    def scores(self) -> dict[str, Any]:
        return self.scored.scores

    def to_json(self) -> dict[str, Any]:
        """The biases and headline scores, as plain data."""
        return {
            "mode": self.mode,
            "biases": [[float(value) for value in bias] for bias in self.biases],
            "scores": {name: self.scores[name] for name in ("precision", "recall", "f1", "macro_f1")},
        }


def _words_of(outputs: DevOutputs, sentences: np.ndarray) -> np.ndarray:
    starts = np.concatenate(([0], np.cumsum(outputs.sentence_lengths)))
    return np.concatenate([np.arange(starts[row], starts[row + 1]) for row in sentences]).astype(np.int64)


def crossfit(
    outputs: DevOutputs,
    mode: str,
    *,
    seed: int = CROSSFIT_SEED,
    metric: str = DEFAULT_METRIC,
    recall_floor: float = DEFAULT_RECALL_FLOOR,
    macro_weight: float = DEFAULT_MACRO_WEIGHT,
    decoding: str = ARGMAX,
    scorer: DevScorer | None = None,
) -> CrossFitResult:
    """Choose `b` on each half with `search_bias(mode=mode, metric=metric, decoding=decoding)` (and the
    metric's `recall_floor` / `macro_weight`), decode the other half with it, pool, score (with `scorer`,
    default: a new `DevScorer` of `outputs`)."""
    if mode not in CALIBRATION_MODES:
        raise ValueError(f"mode must be one of {', '.join(CALIBRATION_MODES)}, got {mode!r}")
    halves = dev_halves(len(outputs.sentence_lengths), seed)
    gold = outputs.tags(outputs.gold)
    logits = outputs.logits.astype(np.float32)
    lengths = np.asarray(outputs.sentence_lengths, dtype=np.int64)
    decoder = Decoder(outputs.labels, detect_scheme(outputs.labels), decoding)
    predicted = np.empty(len(logits), dtype=np.int64)
    chosen = []
    for fit, held_out in (halves, halves[::-1]):
        fit_gold = [gold[row] for row in fit]
        fit_logits = logits[_words_of(outputs, fit)]
        bias = search_bias(
            fit_logits,
            fit_gold,
            outputs.labels,
            mode=mode,
            metric=metric,
            recall_floor=recall_floor,
            macro_weight=macro_weight,
            scheme=decoder.scheme,
            decoding=decoding,
        ).bias
        chosen.append(bias)
        words = _words_of(outputs, held_out)
        predicted[words] = decoder(logits[words] + bias.astype(logits.dtype), lengths[held_out])
    scored = (scorer or DevScorer(outputs))(predicted)
    return CrossFitResult(mode, halves, (chosen[0], chosen[1]), predicted, scored)


@dataclass(frozen=True)
class RunCalibration:
    """One run's dev scores uncalibrated (its stored predictions) and cross-fitted per mode.

    `scores[mode]` are `evaluate_tags` scores and `counts[mode]` the per-sentence entity counts
    (`evaluation.bootstrap.sentence_counts`) for the paired bootstrap; mode `none` is the uncalibrated model
    (the run's stored predictions).
    """

    scores: dict[str, dict[str, Any]]
    counts: dict[str, np.ndarray]
    fits: dict[str, CrossFitResult]

    def to_json(self, modes: Sequence[str]) -> dict[str, Any]:
        """Per mode (`none` first): the headline scores, and the two biases of a cross-fitted mode."""
        headline = ("precision", "recall", "f1", "macro_f1")
        uncalibrated = {name: self.scores[NO_CALIBRATION][name] for name in headline}
        return {NO_CALIBRATION: {"scores": uncalibrated}, **{mode: self.fits[mode].to_json() for mode in modes}}


def calibrate_run(
    outputs: DevOutputs, modes: Sequence[str], *, seed: int = CROSSFIT_SEED, scorer: DevScorer | None = None
) -> RunCalibration:
    """The uncalibrated and the cross-fitted (`modes`) scores of one run's dev outputs (scored by `scorer`,
    default: a new `DevScorer` of `outputs`)."""
    scorer = scorer or DevScorer(outputs)
    fits = {mode: crossfit(outputs, mode, seed=seed, scorer=scorer) for mode in modes}
    scored = {NO_CALIBRATION: scorer(outputs.predicted), **{mode: fit.scored for mode, fit in fits.items()}}
    return RunCalibration(
        {mode: tagging.scores for mode, tagging in scored.items()},
        {mode: tagging.counts for mode, tagging in scored.items()},
        fits,
    )
