"""Word-level tags -> entities -> scores, with the numbers of CoNLL `conlleval`.

`scores` (`evaluate_tags`, `format_report`), `prediction_files` (the `token gold pred` files),
`entity_counts` (exact per-type counts on label ids, for the calibration's many candidates),
`bootstrap` (sentence-resampled intervals of F1, plain and paired) and `error_analysis` (entity
outcomes, SemEval-2013 schemes, confusion). Nothing here knows a model, the Trainer or a loss.
"""

from ner_imbalance.evaluation.bootstrap import bootstrap_f1
from ner_imbalance.evaluation.prediction_files import read_gold_and_pred, read_predictions, write_predictions
from ner_imbalance.evaluation.scores import (
    MODES,
    Span,
    evaluate_tags,
    flatten_metrics,
    format_report,
    sentence_entities,
)

__all__ = [
    "MODES",
    "Span",
    "bootstrap_f1",
    "evaluate_tags",
    "flatten_metrics",
    "format_report",
    "read_gold_and_pred",
    "read_predictions",
    "sentence_entities",
    "write_predictions",
]
