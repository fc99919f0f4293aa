"""Optional dependencies: imported where a feature needs them, with one clear error naming the extra.

Training needs none of them; `pip install 'ner_imbalance[errors]'` adds nervaluate and matplotlib
(error analysis, confusion heat map), `pip install 'ner_imbalance[tune]'` adds optuna
(hyperparameter search).
"""

from __future__ import annotations

import importlib
from types import ModuleType


class MissingExtraError(ModuleNotFoundError):
    """An optional dependency is not installed; the message says which extra provides it."""


def import_extra(module: str, *, extra: str, feature: str) -> ModuleType:
    """Import `module`, or raise `MissingExtraError`: "<feature> needs <module>: pip install '...[<extra>]'"."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError:
        top_level = module.split(".")[0]
        raise MissingExtraError(
            f"{feature} needs {top_level}, which is not installed: pip install 'ner_imbalance[{extra}]'",
            name=top_level,
        ) from None
