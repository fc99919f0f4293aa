"""ner_imbalance: token-classification fine-tuning with losses and decision rules for rare entity tags.

The package, by job (each subpackage's `__init__` exports its public names):

- `losses/`       logits + labels -> loss (focal, softened, GHM-C, truncated, logit-adjusted, dice, CE)
- `data/`         files -> words -> sub-token windows; label lists and tag schemes; statistics
- `decoding/`     word-level scores -> tag sequences (argmax, BIO-constrained Viterbi)
- `calibration/`  a decision bias chosen on dev, folded into the classifier
- `evaluation/`   tags -> entities -> scores, exactly as conlleval; bootstrap; error analysis
- `training/`     one run: `prepare_run` / `execute_run`, `ImbalanceTrainer`, tuning
- `inference/`    a trained folder -> tags for new text (`Tagger`, `ner_pipeline`)
- `config/`       the command-line dataclasses and their checks
- `study/`        the loss study, an application on top of the library

The names users import most are available here, imported lazily (`import ner_imbalance` alone
imports neither torch nor transformers).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "build_loss": "ner_imbalance.losses",
    "register_loss": "ner_imbalance.losses",
    "LOSS_REGISTRY": "ner_imbalance.losses",
    "ImbalanceTrainer": "ner_imbalance.training",
    "prepare_run": "ner_imbalance.training",
    "execute_run": "ner_imbalance.training",
    "run_experiment": "ner_imbalance.training",
    "parse_arguments": "ner_imbalance.config",
    "Tagger": "ner_imbalance.inference",
    "ner_pipeline": "ner_imbalance.inference",
    "evaluate_tags": "ner_imbalance.evaluation",
    "search_bias": "ner_imbalance.calibration",
    "decode": "ner_imbalance.decoding",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import the module of an exported name on first use (PEP 562)."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'ner_imbalance' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
