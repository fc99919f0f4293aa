"""Decision-bias calibration: an additive logit bias chosen on dev, folded into the classifier.

`search` chooses the bias on cached word-level dev logits (`search_bias`, no forward pass),
`classifier` folds it into a model's head so that every later prediction applies it, and `files`
writes and reads the word-level logits and `calibration.json` of a run. Nothing here knows the
Trainer, the data loader or the argument classes.
"""

from ner_imbalance.calibration.classifier import classifier_head, fold_bias_into_classifier
from ner_imbalance.calibration.files import (
    CALIBRATION_FILE,
    WORD_LOGITS_FILE,
    load_word_logits,
    save_word_logits,
    write_calibration,
)
from ner_imbalance.calibration.objective import CALIBRATION_METRICS
from ner_imbalance.calibration.search import (
    NO_CALIBRATION,
    CalibrationResult,
    search_bias,
    tags_from_logits,
)

__all__ = [
    "CALIBRATION_FILE",
    "CALIBRATION_METRICS",
    "NO_CALIBRATION",
    "WORD_LOGITS_FILE",
    "CalibrationResult",
    "classifier_head",
    "fold_bias_into_classifier",
    "load_word_logits",
    "save_word_logits",
    "search_bias",
    "tags_from_logits",
    "write_calibration",
]
