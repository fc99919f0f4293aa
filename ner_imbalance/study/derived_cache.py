"""A disk cache of what the report derives from each run's stored dev outputs (`dev_runs.DevRuns`).

A run's derived results (its cross-fitted calibration with the modes asked for, its decodings) are a
pure function of its `<run_id>.logits.npz`, the modes and the code that computes them. So each is
kept in one pickle file named by a hash of the file's bytes, the modes, whether it was decoded, and a
fingerprint of the code (`code_fingerprint`: the source of every module the derivation runs, and the
numpy version); a re-run of the report derives only the runs it has not derived before. A change of
that code changes every key, so a stale result is never read (old files are never read again;
delete the folder to reclaim them). The folder (default `results/cache/`) is not versioned.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ner_imbalance.utils.atomic import atomic_open

DEFAULT_CACHE_DIR = Path("results/cache")
DERIVING_MODULES = (
    "ner_imbalance.calibration.objective",
    "ner_imbalance.calibration.scan",
    "ner_imbalance.calibration.search",
    "ner_imbalance.constants",
    "ner_imbalance.decoding",
    "ner_imbalance.decoding.transitions",
    "ner_imbalance.decoding.viterbi",
    "ner_imbalance.evaluation.entity_counts",
    "ner_imbalance.evaluation.scores",
    "ner_imbalance.study.crossfit",
    "ner_imbalance.study.decoding",
    "ner_imbalance.study.derived_cache",
    "ner_imbalance.study.dev_runs",
    "ner_imbalance.study.records",
    "ner_imbalance.study.scoring",
    "ner_imbalance.tags",
)
"""Every module whose code a derived result depends on (a test checks that the functions it calls live in them)."""


@functools.cache
def code_fingerprint() -> str:
    """sha256 of the numpy version and the source of each of `DERIVING_MODULES`."""
    digest = hashlib.sha256(np.__version__.encode())
    for name in DERIVING_MODULES:
        digest.update(name.encode() + b"\0" + Path(importlib.util.find_spec(name).origin).read_bytes())
    return digest.hexdigest()


class DerivedCache:
    """Derived results in `folder`, one pickle per (dev outputs file's bytes, modes, decoded, code)."""

    def __init__(self, folder: str | os.PathLike = DEFAULT_CACHE_DIR) -> None:
        self.folder = Path(folder)

    def key(self, outputs_path: str | os.PathLike, modes: Sequence[str] | None, decode: bool) -> str:
        digest = hashlib.sha256(code_fingerprint().encode())
        digest.update(repr((None if modes is None else tuple(modes), decode)).encode())
        digest.update(Path(outputs_path).read_bytes())
        return digest.hexdigest()

    def load(self, key: str) -> Any | None:
        """The result kept under `key`, or None when there is none (or it cannot be read back)."""
        try:
            with open(self.folder / f"{key}.pickle", "rb") as stream:
                return pickle.load(stream)
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError):
            return None

    def store(self, key: str, result: Any) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        with atomic_open(self.folder / f"{key}.pickle", "wb") as stream:
            pickle.dump(result, stream, protocol=pickle.HIGHEST_PROTOCOL)
