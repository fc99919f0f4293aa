"""Predicting and scoring one split of a run with its trainer, at word level.

`metrics_for` is the `compute_metrics` of a split (`word_metrics.WordLevelMetrics`);
`predict_split` predicts a split with the model as it is (arg-max, or full logits for
calibration); `evaluate_split` scores it and writes `<prefix>_results.json` and
`predictions_<split>.conll`. The trainer is the run's `ImbalanceTrainer` (any `transformers.Trainer`
with the run's arguments works).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from transformers import Trainer

from ner_imbalance.evaluation import write_predictions
from ner_imbalance.training.corpus import PreparedCorpus
from ner_imbalance.training.metrics import WordLevelMetrics, argmax_logits


def metrics_for(corpus: PreparedCorpus, split: str) -> WordLevelMetrics | None:
    """The `compute_metrics` of `split` (word-level entity scores), or None if the corpus has no such split."""
    if split not in corpus.windows:
        return None
    return WordLevelMetrics(corpus.windows[split], corpus.words[split]["tags"], corpus.id2label, scheme=corpus.scheme)


@dataclass
class SplitPrediction:
    """Metrics (keys `<prefix>_*`) and predictions (label ids, or full logits) of one split."""

    metrics: dict[str, float]
    predictions: np.ndarray


def predict_split(
    trainer: Trainer, corpus: PreparedCorpus, split: str, prefix: str, *, logits: bool = False
) -> SplitPrediction:
    """Predict and score `split` with the model as it is; `logits=True` keeps the full logits
    `[windows, length, labels]` instead of the arg-max that evaluation otherwise keeps."""
    trainer.compute_metrics = metrics_for(corpus, split)
    keep = trainer.preprocess_logits_for_metrics
    trainer.preprocess_logits_for_metrics = None if logits else argmax_logits
    try:
        prediction = trainer.predict(corpus.windows[split], metric_key_prefix=prefix)
    finally:
        trainer.preprocess_logits_for_metrics = keep
    return SplitPrediction(dict(prediction.metrics), prediction.predictions)


def evaluate_split(
    trainer: Trainer,
    corpus: PreparedCorpus,
    split: str,
    prefix: str,
    *,
    prediction: SplitPrediction | None = None,
    uncalibrated_metrics: dict[str, float] | None = None,
) -> dict[str, float]:
    """Score `split` at word level (predicting it unless `prediction` is given), save
    `<prefix>_results.json` and `predictions_<split>.conll`. `uncalibrated_metrics` (keys
    `<prefix>_*`) are added as `<prefix>_uncalibrated_*`."""
    if prediction is None:
        prediction = predict_split(trainer, corpus, split, prefix)
    metrics = dict(prediction.metrics)
    for name, value in (uncalibrated_metrics or {}).items():
        metrics[f"{prefix}_uncalibrated_{name.removeprefix(prefix + '_')}"] = value
    trainer.log_metrics(prefix, metrics)
    trainer.save_metrics(prefix, metrics)
    if trainer.is_world_process_zero():
        words = corpus.words[split]
        predicted = metrics_for(corpus, split).predicted_tags(prediction.predictions)
        path = os.path.join(trainer.args.output_dir, f"predictions_{split}.conll")
        temporary = os.path.join(trainer.args.output_dir, f".predictions_{split}.conll.tmp")
        write_predictions(temporary, words["tokens"], words["tags"], predicted)
        os.replace(temporary, path)
    return metrics
