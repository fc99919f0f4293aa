"""The registry of losses by name, `build_loss` and the defaults of each loss's hyperparameters."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from ner_imbalance.losses._base import TokenLoss
from ner_imbalance.losses.cross_entropy import CrossEntropyLoss
from ner_imbalance.losses.focal import FocalLoss
from ner_imbalance.losses.ghm import GHMCLoss
from ner_imbalance.losses.softened import SoftenedLoss
from ner_imbalance.losses.truncated import TruncatedLoss

LOSS_REGISTRY: Mapping[str, type[TokenLoss]] = MappingProxyType(
    {
        "ce": CrossEntropyLoss,
        "focal": FocalLoss,
        "softened": SoftenedLoss,
        "truncated": TruncatedLoss,
        "ghmc": GHMCLoss,
    }
)
LOSS_NAMES: tuple[str, ...] = tuple(LOSS_REGISTRY)


def _loss_class(name: str) -> type[TokenLoss]:
    if name not in LOSS_REGISTRY:
        raise ValueError(f"loss name must be one of {LOSS_NAMES}; got {name!r}")
    return LOSS_REGISTRY[name]


def _keyword_defaults(function: Any) -> dict[str, Any]:
    return {
        parameter.name: parameter.default
        for parameter in inspect.signature(function).parameters.values()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
    }


def loss_hyperparameters(name: str) -> dict[str, Any]:
    """The hyperparameters `build_loss(name, ...)` accepts, with their defaults.

    The loss's own ones first, then those every loss shares (`class_weights`, `ignore_index`,
    `reduction`); `num_labels` is an argument of `build_loss`, not a hyperparameter.
    """
    defaults = _keyword_defaults(_loss_class(name).__init__)
    defaults.update(_keyword_defaults(TokenLoss.__init__))
    defaults.pop("num_labels")
    return defaults


def build_loss(name: str, *, num_labels: int | None = None, **hyperparameters: Any) -> TokenLoss:
    """The loss registered under `name` (one of `LOSS_NAMES`), built with `hyperparameters`.

    `num_labels`, when given, is used to check the length of per-class vectors (`class_weights`,
    focal's `alpha`) now rather than at the first call. An unknown name, an unexpected keyword
    or a bad value raises `ValueError` naming the argument and the allowed values.
    """
    accepted = loss_hyperparameters(name)
    unexpected = sorted(set(hyperparameters) - set(accepted))
    if unexpected:
        raise ValueError(f"unexpected hyperparameter(s) {unexpected} for loss {name!r}; accepted: {sorted(accepted)}")
    return LOSS_REGISTRY[name](num_labels=num_labels, **hyperparameters)
