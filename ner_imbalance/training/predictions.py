"""A run's splits predicted with its trainer, decoded, calibrated and scored at word level.

`predict_split` predicts one split with the model as it is and decodes it (`metrics.WordLevelMetrics`,
the split's `compute_metrics`, built once per split by `corpus.PreparedCorpus.metrics`), keeping the
words' logits when asked; `predict_uncalibrated` predicts the splits before any calibration and
writes the validation split's word-level logits (`word_logits_validation.npz`); `calibrate_model`
chooses the decision bias on those logits under the run's decoding (`calibration.search_bias`),
folds it into the classifier and writes `calibration.json`; `evaluate_split` saves
`<prefix>_results.json` and `predictions_<split>.conll`. The trainer is the run's `ImbalanceTrainer`
(any `transformers.Trainer` with the run's arguments works).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
from transformers import Trainer

from ner_imbalance.calibration import (
    CALIBRATION_FILE,
    WORD_LOGITS_FILE,
    CalibrationResult,
    fold_bias_into_classifier,
    save_word_logits,
    search_bias,
    write_calibration,
)
from ner_imbalance.constants import ARGMAX
from ner_imbalance.evaluation import write_predictions
from ner_imbalance.training.corpus import PreparedCorpus
from ner_imbalance.training.metrics import argmax_logits

logger = logging.getLogger(__name__)


@dataclass
class SplitPrediction:
    """Metrics (keys `<prefix>_*`), decoded tags (one list per sentence) and, when the prediction
    kept logits, the words' logits `[num_words, labels]` of one split."""

    metrics: dict[str, float]
    tags: list[list[str]]
    word_logits: np.ndarray | None


def predict_split(
    trainer: Trainer, corpus: PreparedCorpus, split: str, prefix: str, *, decoding: str = ARGMAX, logits: bool = False
) -> SplitPrediction:
    """Predict, decode and score `split` with the model as it is; `logits=True` keeps the words' logits.

    The trainer's `compute_metrics` and `preprocess_logits_for_metrics` are set for the split and
    restored afterwards.
    """
    metrics = corpus.metrics(split, decoding)
    kept = trainer.compute_metrics, trainer.preprocess_logits_for_metrics
    trainer.compute_metrics = metrics
    trainer.preprocess_logits_for_metrics = None if logits or metrics.needs_logits else argmax_logits
    try:
        prediction = trainer.predict(corpus.windows[split], metric_key_prefix=prefix)
    finally:
        trainer.compute_metrics, trainer.preprocess_logits_for_metrics = kept
    return SplitPrediction(dict(prediction.metrics), metrics.last.tags, metrics.last.word_logits)


def predict_uncalibrated(
    trainer: Trainer, corpus: PreparedCorpus, splits: dict[str, str], *, decoding: str, calibrating: bool
) -> dict[str, SplitPrediction]:
    """The splits' predictions by the trained model before any calibration.

    The validation split (when evaluated or calibrated on) is predicted with its words' logits,
    written to `word_logits_validation.npz`. The test split is predicted here only when
    calibration will change the model afterwards.
    """
    predicted = {}
    if "validation" in corpus.windows and ("validation" in splits or calibrating):
        validation = predict_split(trainer, corpus, "validation", "eval", decoding=decoding, logits=True)
        predicted["validation"] = validation
        if trainer.is_world_process_zero():
            save_word_logits(
                os.path.join(trainer.args.output_dir, WORD_LOGITS_FILE),
                validation.word_logits,
                corpus.metrics("validation", decoding).num_words,
                corpus.label_list,
            )
    if calibrating and "test" in splits:
        predicted["test"] = predict_split(trainer, corpus, "test", "test", decoding=decoding)
    return predicted


def calibrate_model(
    trainer: Trainer,
    corpus: PreparedCorpus,
    validation: SplitPrediction,
    calibration: dict[str, Any],
    *,
    decoding: str,
) -> CalibrationResult:
    """Choose the logit bias on the validation split's word logits (`calibration`: the keyword
    arguments of `search_bias`) under `decoding`, fold it into the model's classifier and write
    `calibration.json`. Every process computes the same bias."""
    result = search_bias(
        validation.word_logits,
        corpus.metrics("validation", decoding).gold_tags,
        corpus.label_list,
        scheme=corpus.scheme,
        decoding=decoding,
        **calibration,
    )
    fold_bias_into_classifier(trainer.model, result.bias)
    logger.info("calibration: %s", result.describe())
    if result.at_bound:
        logger.warning(
            "calibration: the bias of %s ended on its search bound %s; a wider bound may score higher on dev "
            "(--calibration_outside_bound, --calibration_bound); calibration.json lists them under at_bound",
            ", ".join(result.at_bound),
            result.settings,
        )
    if trainer.is_world_process_zero():
        write_calibration(os.path.join(trainer.args.output_dir, CALIBRATION_FILE), result)
    return result


def evaluate_split(
    trainer: Trainer,
    corpus: PreparedCorpus,
    split: str,
    prefix: str,
    *,
    decoding: str = ARGMAX,
    prediction: SplitPrediction | None = None,
    uncalibrated_metrics: dict[str, float] | None = None,
) -> dict[str, float]:
    """Score `split` at word level (predicting it unless `prediction` is given), save
    `<prefix>_results.json` and `predictions_<split>.conll`. `uncalibrated_metrics` (keys
    `<prefix>_*`) are added as `<prefix>_uncalibrated_*`; `<prefix>_decoding` records the decoding."""
    if prediction is None:
        prediction = predict_split(trainer, corpus, split, prefix, decoding=decoding)
    metrics: dict[str, Any] = dict(prediction.metrics)
    for name, value in (uncalibrated_metrics or {}).items():
        metrics[f"{prefix}_uncalibrated_{name.removeprefix(prefix + '_')}"] = value
    metrics[f"{prefix}_decoding"] = decoding
    trainer.save_metrics(prefix, metrics)
    if trainer.is_world_process_zero():
        words = corpus.words[split]
        path = os.path.join(trainer.args.output_dir, f"predictions_{split}.conll")
        write_predictions(path, words["tokens"], words["tags"], prediction.tags)
    return metrics
