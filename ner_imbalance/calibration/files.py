"""The calibration's files in a run's folder: the validation split's word-level logits and `calibration.json`.

`word_logits_validation.npz` holds float16 logits before any bias (one row per word), the sentence
lengths and the label list, so a decision rule (a bias, a decoding) can be chosen or re-scored
later without a forward pass; `calibration.json` is `CalibrationResult.to_json()`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ner_imbalance.calibration.search import CalibrationResult, check_word_logits
from ner_imbalance.utils.atomic import atomic_open, write_json_atomic

WORD_LOGITS_FILE = "word_logits_validation.npz"


CALIBRATION_FILE = "calibration.json"


def save_word_logits(
    path: str | os.PathLike, word_logits: np.ndarray, sentence_lengths: Sequence[int], label_list: Sequence[str]
) -> None:
    """Write word-level logits as `.npz`: `logits` float16 `[num_words, C]`, `sentence_lengths`
    int64 and `labels` (strings; loadable without pickle)."""
    logits = check_word_logits(word_logits, label_list)
    lengths = np.asarray(sentence_lengths, dtype=np.int64)
    if lengths.sum() != len(logits):
        raise ValueError(f"word_logits has {len(logits)} rows but sentence_lengths add up to {lengths.sum()}")
    with atomic_open(path, "wb") as handle:
        np.savez(
            handle,
            logits=logits.astype(np.float16),
            sentence_lengths=lengths,
            labels=np.asarray(list(label_list), dtype=np.str_),
        )


def load_word_logits(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """`(logits float32, sentence_lengths, labels)` of a file written by `save_word_logits`."""
    with np.load(path, allow_pickle=False) as data:
        return data["logits"].astype(np.float32), data["sentence_lengths"], data["labels"].tolist()


def write_calibration(path: str | os.PathLike, result: CalibrationResult, extra: dict[str, Any] | None = None) -> None:
    """Write `result.to_json()` (plus `extra` entries) as indented JSON, atomically."""
    write_json_atomic(path, {**result.to_json(), **(extra or {})})
