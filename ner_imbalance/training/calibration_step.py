"""The calibration step of a run, after training: dev logits -> bias -> folded into the model.

`predict_uncalibrated` predicts the splits with the trained model before any calibration (the
validation split with full logits, its word-level logits written to `word_logits_validation.npz`);
`calibrate_model` chooses the bias on them (`calibration.search_bias`, `--calibrate*` flags),
folds it into the classifier and writes `calibration.json`. `calibration.py` itself knows no
Trainer or corpus; this module connects it to a run's trainer and windows.
"""

from __future__ import annotations

import logging
import os

import numpy as np
from transformers import Trainer

from ner_imbalance.calibration import (
    CALIBRATION_FILE,
    NO_CALIBRATION,
    WORD_LOGITS_FILE,
    CalibrationResult,
    fold_bias_into_classifier,
    save_word_logits,
    search_bias,
    write_calibration,
)
from ner_imbalance.data.alignment import gather_word_values
from ner_imbalance.training.corpus import PreparedCorpus
from ner_imbalance.training.split_evaluation import SplitPrediction, predict_split

logger = logging.getLogger(__name__)


def predict_uncalibrated(
    trainer: Trainer, corpus: PreparedCorpus, splits: dict[str, str]
) -> dict[str, SplitPrediction]:
    """The splits' predictions by the trained model before any calibration.

    The validation split (when evaluated or calibrated on) is predicted with full logits, and its
    word-level logits are written to `word_logits_validation.npz`. The test split is predicted
    here only when calibration will change the model afterwards.
    """
    calibrating = trainer.args.calibrate != NO_CALIBRATION
    predicted = {}
    if "validation" in corpus.windows and ("validation" in splits or calibrating):
        predicted["validation"] = predict_split(trainer, corpus, "validation", "eval", logits=True)
        if trainer.is_world_process_zero():
            words = corpus.words["validation"]
            save_word_logits(
                os.path.join(trainer.args.output_dir, WORD_LOGITS_FILE),
                word_level_logits(corpus, "validation", predicted["validation"].predictions),
                [len(tags) for tags in words["tags"]],
                corpus.label_list,
            )
    if calibrating and "test" in splits:
        predicted["test"] = predict_split(trainer, corpus, "test", "test")
    return predicted


def word_level_logits(corpus: PreparedCorpus, split: str, logits: np.ndarray) -> np.ndarray:
    """`[num_words, num_labels]`: each word's logits from the sub-token it is predicted from."""
    return gather_word_values(logits, corpus.windows[split], [len(tags) for tags in corpus.words[split]["tags"]])


def calibrate_model(trainer: Trainer, corpus: PreparedCorpus, validation: SplitPrediction) -> CalibrationResult:
    """Choose the logit bias on the validation split (`--calibrate`), fold it into the model's
    classifier and write `calibration.json`. Every process computes the same bias."""
    gold = [list(tags) for tags in corpus.words["validation"]["tags"]]
    result = search_bias(
        word_level_logits(corpus, "validation", validation.predictions),
        gold,
        corpus.label_list,
        scheme=corpus.scheme,
        **trainer.args.calibration_kwargs(),
    )
    fold_bias_into_classifier(trainer.model, result.bias)
    logger.info("calibration: %s", result.describe())
    if trainer.is_world_process_zero():
        write_calibration(os.path.join(trainer.args.output_dir, CALIBRATION_FILE), result)
    return result
