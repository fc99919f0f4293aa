"""Score prediction files: read gold and predicted tags, check that they can be compared, then score them.

`evaluate_files` is what `ner-evaluate` computes. Before any scoring, gold and predictions must
use one tag scheme (`check_schemes`: IOB2 against IOBES is refused, each detected from its own
tags); a predicted entity type that gold never uses is scored, as false positives as conlleval does,
with one warning naming it (`warn_unseen_types`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections import Counter
from collections.abc import Sequence

from ner_imbalance.constants import OUTSIDE
from ner_imbalance.evaluation.bootstrap import bootstrap_f1
from ner_imbalance.evaluation.error_analysis import ErrorAnalysis, analyse_errors
from ner_imbalance.evaluation.prediction_files import read_gold_and_pred
from ner_imbalance.evaluation.scores import evaluate_tags
from ner_imbalance.tags import conlleval_split, detect_scheme

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class FileEvaluation:
    """The scores of a prediction file (`evaluate_tags`' dict, with `errors` and `bootstrap` when asked
    for) and its error analysis (None unless asked for)."""

    metrics: dict
    analysis: ErrorAnalysis | None


def check_schemes(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], gold_name: str, pred_name: str) -> str:
    """The one tag scheme of gold and predictions; a `ValueError` naming both if one uses E-/S- tags
    (IOBES) and the other, with entity tags, none (IOB2)."""
    gold_tags = {tag for tags in gold for tag in tags}
    pred_tags = {tag for tags in pred for tag in tags}
    schemes = {name: detect_scheme(tags) for name, tags in ((gold_name, gold_tags), (pred_name, pred_tags))}
    has_entities = [any(tag != OUTSIDE for tag in tags) for tags in (gold_tags, pred_tags)]
    if len(set(schemes.values())) > 1 and all(has_entities):
        found = ", ".join(f"{name} in {scheme}" for name, scheme in schemes.items())
        raise ValueError(f"gold and predictions use different tag schemes ({found}): convert one to the other's")
    return detect_scheme(gold_tags | pred_tags)


def warn_unseen_types(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> None:
    """One warning naming the predicted entity types that gold never uses (each is scored as false
    positives); types as conlleval's chunking reads them."""
    gold_types = {conlleval_split(tag)[1] for tags in gold for tag in tags if tag != OUTSIDE}
    predicted = Counter(conlleval_split(tag)[1] for tags in pred for tag in tags if tag != OUTSIDE)
    unseen = {entity_type: count for entity_type, count in predicted.items() if entity_type not in gold_types}
    if unseen:
        listed = ", ".join(f"{entity_type} ({count}x)" for entity_type, count in sorted(unseen.items()))
        logger.warning("predicted types that gold never uses: %s; scored as false positives", listed)


def evaluate_files(
    pred_path: str | os.PathLike,
    gold_path: str | os.PathLike | None = None,
    *,
    strict: bool = False,
    allow_token_mismatch: bool = False,
    analyse: bool = False,
    errors: bool = False,
    bootstrap: int = 0,
    seed: int = 0,
) -> FileEvaluation:
    """Scores of `pred_path` (token ... tag) against `gold_path` aligned by line, or of one `token gold pred`
    file when `gold_path` is None; conlleval's chunking, or seqeval's strict mode with `strict`.

    `analyse` adds the error analysis, `errors` also its counts to the metrics (`errors`), `bootstrap`
    resamples of sentences a 95% interval of micro F1 (`bootstrap`, drawn with `seed`). Bad input
    (unreadable files, misaligned tokens, two schemes) raises `ValueError`/`FileNotFoundError` naming
    it before any scoring.
    """
    mode = "strict" if strict else "conlleval"
    tokens, gold, pred = read_gold_and_pred(
        gold_path or pred_path, pred_path if gold_path else None, allow_token_mismatch=allow_token_mismatch
    )
    if gold_path:
        scheme = check_schemes(gold, pred, f"gold {gold_path}", f"predictions {pred_path}")
    else:
        scheme = check_schemes(gold, pred, f"the gold column of {pred_path}", "its predicted column")
    warn_unseen_types(gold, pred)
    metrics = evaluate_tags(gold, pred, mode=mode, scheme=scheme)
    analysis = analyse_errors(tokens, gold, pred, mode=mode, scheme=scheme) if analyse or errors else None
    if errors:
        metrics["errors"] = analysis.to_dict()
    if bootstrap:
        metrics["bootstrap"] = bootstrap_f1(gold, pred, resamples=bootstrap, seed=seed, mode=mode, scheme=scheme)
    return FileEvaluation(metrics, analysis)
