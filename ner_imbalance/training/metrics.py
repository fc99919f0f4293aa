"""Trainer-side metrics: sub-token predictions -> one score row or tag per word -> decoded tags -> entity scores.

The Trainer sees windows of sub-tokens; users care about words and entities. `WordLevelMetrics`
is the Trainer's `compute_metrics` for one split: it takes each word's prediction from the window
where it has most context (`data.alignment.gather_word_values`), decodes the word-level scores
into tag sequences (`ner_imbalance.decoding`: `argmax`, or `viterbi` over the valid transitions of
the tag scheme) and scores them with `ner_imbalance.evaluation.evaluate_tags`, so `eval_f1` is the
number `scripts/evaluate_ner.py` gives on the written predictions. It keeps the words' tags (and
their logits, when the evaluation kept logits) of its last call, so the run reads them instead of
merging the windows again.

Under `argmax` decoding the Trainer keeps one label id per sub-token (`argmax_logits`, its
`preprocess_logits_for_metrics`) instead of accumulating `[windows, length, labels]` float
logits; `viterbi` needs the scores of every label, so the logits are kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import datasets
import numpy as np
import torch
from transformers import EvalPrediction

from ner_imbalance.constants import ARGMAX, DECODING_METHODS
from ner_imbalance.data.alignment import gather_word_values
from ner_imbalance.decoding import decode
from ner_imbalance.evaluation import evaluate_tags, flatten_metrics


def argmax_logits(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """`preprocess_logits_for_metrics`: the label id of each sub-token, computed on the device."""
    return logits.argmax(dim=-1)


def split_sentences(values: Sequence[str], num_words: Sequence[int]) -> list[list[str]]:
    """Per-word values of concatenated sentences, cut into one list per sentence of `num_words[i]` words."""
    starts = np.concatenate(([0], np.cumsum(num_words, dtype=np.int64)))
    values = list(values)
    return [values[starts[row] : starts[row + 1]] for row in range(len(num_words))]


@dataclass
class WordPredictions:
    """A split's decoded tags, one list per sentence, and the words' logits `[num_words, labels]`
    when the evaluation kept logits (None when it kept only label ids)."""

    tags: list[list[str]]
    word_logits: np.ndarray | None


class WordLevelMetrics:
    """`compute_metrics` for one evaluation split.

    Args:
        tokenized: that split as returned by `tokenize_and_align` (windows in dataset order).
        gold_tags: the split's word-level gold tags, one list per sentence.
        id2label: label id -> tag.
        mode: "conlleval" (default, the CoNLL script's numbers) or "strict".
        scheme: the tag scheme of the labels, "IOB2" or "IOBES".
        decoding: "argmax" (each word its best label) or "viterbi" (the best valid tag sequence).
    """

    def __init__(
        self,
        tokenized: datasets.Dataset,
        gold_tags: Sequence[Sequence[str]],
        id2label: dict[int, str],
        *,
        mode: str = "conlleval",
        scheme: str = "IOB2",
        decoding: str = ARGMAX,
    ) -> None:
        if decoding not in DECODING_METHODS:
            raise ValueError(f"decoding must be one of {', '.join(DECODING_METHODS)}, got {decoding!r}")
        self.tokenized = tokenized
        self.gold_tags = [list(tags) for tags in gold_tags]
        self.num_words = [len(tags) for tags in self.gold_tags]
        self.label_list = [id2label[index] for index in range(len(id2label))]
        self.mode = mode
        self.scheme = scheme
        self.decoding = decoding
        self.last: WordPredictions | None = None

    @property
    def needs_logits(self) -> bool:
        """Whether decoding needs every label's score (so the Trainer must keep the logits)."""
        return self.decoding != ARGMAX

    def word_predictions(self, predictions: np.ndarray) -> WordPredictions:
        """The split's tags from the Trainer's predictions: label ids `[windows, length]` (argmax
        decoding only) or logits `[windows, length, labels]`."""
        if len(predictions) != len(self.tokenized):
            raise ValueError(
                f"got predictions for {len(predictions)} windows, the split has {len(self.tokenized)}: "
                "the metrics were built for another evaluation split"
            )
        word_values = gather_word_values(predictions, self.tokenized, self.num_words)
        if word_values.ndim == 1:
            if self.needs_logits:
                raise ValueError(f"{self.decoding} decoding needs logits, got one label id per sub-token")
            label_ids, word_logits = word_values, None
        else:
            word_logits = word_values.astype(np.float32, copy=False)
            label_ids = decode(word_logits, self.num_words, self.label_list, scheme=self.scheme, method=self.decoding)
        tags = np.asarray(self.label_list, dtype=object)[label_ids.astype(np.int64)].tolist()
        return WordPredictions(split_sentences(tags, self.num_words), word_logits)

    def __call__(self, prediction: EvalPrediction) -> dict[str, float]:
        self.last = self.word_predictions(prediction.predictions)
        return flatten_metrics(evaluate_tags(self.gold_tags, self.last.tags, mode=self.mode, scheme=self.scheme))
