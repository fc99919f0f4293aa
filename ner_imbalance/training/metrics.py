"""Trainer-side metrics: sub-token predictions -> one tag per word -> entity-level scores.

The Trainer sees windows of sub-tokens; users care about words and entities. `argmax_logits`
(the Trainer's `preprocess_logits_for_metrics`) keeps one label id per sub-token instead of
accumulating `[windows, length, labels]` float logits, and `WordLevelMetrics` merges windows back
to exactly one tag per word (`data.alignment.merge_window_predictions`) and scores them with the
word-level evaluation of `ner_imbalance.evaluation.scores`, so `eval_f1` is the same number as
`scripts/evaluate_ner.py` gives on the written predictions.
"""

from __future__ import annotations

from collections.abc import Sequence

import datasets
import numpy as np
import torch
from transformers import EvalPrediction

from ner_imbalance.data.alignment import merge_window_predictions
from ner_imbalance.evaluation import evaluate_tags, flatten_metrics


def argmax_logits(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """`preprocess_logits_for_metrics`: the label id of each sub-token, computed on the device."""
    return logits.argmax(dim=-1)


class WordLevelMetrics:
    """`compute_metrics` for one evaluation split.

    Args:
        tokenized: that split as returned by `tokenize_and_align` (windows in dataset order).
        gold_tags: the split's word-level gold tags, one list per sentence.
        id2label: label id -> tag.
        mode: "conlleval" (default, the CoNLL script's numbers) or "strict".
        scheme: the tag scheme of the labels, "IOB2" or "IOBES".
    """

    def __init__(
        self,
        tokenized: datasets.Dataset,
        gold_tags: Sequence[Sequence[str]],
        id2label: dict[int, str],
        *,
        mode: str = "conlleval",
        scheme: str = "IOB2",
    ) -> None:
        self.tokenized = tokenized
        self.gold_tags = [list(tags) for tags in gold_tags]
        self.id2label = id2label
        self.mode = mode
        self.scheme = scheme

    def predicted_tags(self, predicted_label_ids: np.ndarray) -> list[list[str]]:
        """One predicted tag per word of every sentence of the split."""
        if len(predicted_label_ids) != len(self.tokenized):
            raise ValueError(
                f"got predictions for {len(predicted_label_ids)} windows, the split has {len(self.tokenized)}: "
                "the metrics were built for another evaluation split"
            )
        return merge_window_predictions(
            self.tokenized, predicted_label_ids, self.id2label, [len(tags) for tags in self.gold_tags]
        )

    def __call__(self, prediction: EvalPrediction) -> dict[str, float]:
        scores = evaluate_tags(
            self.gold_tags, self.predicted_tags(prediction.predictions), mode=self.mode, scheme=self.scheme
        )
        return flatten_metrics(scores)
