"""The registry of losses by name: `build_loss`, `register_loss`, and what each loss declares.

A loss is registered under a name with its class; the class's `HYPERPARAMETERS` give its
command-line flags (`ner_imbalance.config.loss_arguments` derives `LossArguments` from this registry), its
checks and its search space (`loss_search_space`). Registering a loss is all it takes to use it
from the command line.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from ner_imbalance.losses._base import TokenLoss
from ner_imbalance.losses._hyperparameters import Hyperparameter, SearchSpace
from ner_imbalance.losses.cross_entropy import CrossEntropyLoss
from ner_imbalance.losses.dice import DiceLoss
from ner_imbalance.losses.focal import FocalLoss
from ner_imbalance.losses.ghm import GHMCLoss
from ner_imbalance.losses.logit_adjusted import LogitAdjustedLoss
from ner_imbalance.losses.softened import SoftenedLoss
from ner_imbalance.losses.truncated import TruncatedLoss

_LOSSES: dict[str, type[TokenLoss]] = {}
LOSS_REGISTRY: Mapping[str, type[TokenLoss]] = MappingProxyType(_LOSSES)
"""Every registered loss by name (a live read-only view: it shows losses registered later)."""


def _keyword_defaults(function: Any) -> dict[str, Any]:
    return {
        parameter.name: parameter.default
        for parameter in inspect.signature(function).parameters.values()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
    }


def _check_declarations(name: str, loss_class: type[TokenLoss]) -> None:
    """The declarations of `loss_class` match its constructor, and shared flags agree with other losses'."""
    keywords = _keyword_defaults(loss_class.__init__)
    names = [hyperparameter.name for hyperparameter in loss_class.HYPERPARAMETERS]
    if len(set(names)) != len(names):
        raise ValueError(f"loss {name!r} declares a hyperparameter twice: {names}")
    for hyperparameter in loss_class.HYPERPARAMETERS:
        if hyperparameter.name not in keywords:
            raise ValueError(f"loss {name!r} declares {hyperparameter.name!r}, not a keyword of its constructor")
        if keywords[hyperparameter.name] != hyperparameter.default:
            raise ValueError(
                f"loss {name!r}: {hyperparameter.name} defaults to {keywords[hyperparameter.name]!r} in the "
                f"constructor but {hyperparameter.default!r} in its declaration"
            )
        for other_name, other_class in _LOSSES.items():
            for other in other_class.HYPERPARAMETERS:
                if other.flag_name == hyperparameter.flag_name and not other.same_flag_as(hyperparameter):
                    raise ValueError(
                        f"loss {name!r}: flag --{hyperparameter.flag_name} is already loss {other_name!r}'s with "
                        f"another type, default or choices; give it its own `flag`"
                    )


def register_loss(
    name: str, loss_class: type[TokenLoss] | None = None
) -> type[TokenLoss] | Callable[[type[TokenLoss]], type[TokenLoss]]:
    """Register `loss_class` under `name`; without a class, a class decorator that does it.

    Its declared hyperparameters become command-line flags. `ValueError` if the name is taken,
    the class is not a `TokenLoss`, a declared default differs from the constructor's, or a flag
    is another loss's with a different type, default or choices.
    """

    def register(cls: type[TokenLoss]) -> type[TokenLoss]:
        if not (isinstance(name, str) and name.isidentifier()):
            raise ValueError(f"loss name must be an identifier; got {name!r}")
        if name in _LOSSES:
            raise ValueError(f"loss name {name!r} is already registered (to {_LOSSES[name].__name__})")
        if not (isinstance(cls, type) and issubclass(cls, TokenLoss)):
            raise ValueError(f"loss {name!r} must be a TokenLoss subclass; got {cls!r}")
        _check_declarations(name, cls)
        _LOSSES[name] = cls
        return cls

    return register if loss_class is None else register(loss_class)


def unregister_loss(name: str) -> None:
    """Remove a loss registered with `register_loss` (the built-in losses stay)."""
    if name in LOSS_NAMES:
        raise ValueError(f"loss {name!r} is built in and cannot be unregistered")
    if name not in _LOSSES:
        raise ValueError(f"no loss {name!r} is registered")
    del _LOSSES[name]


for _name, _class in {
    "ce": CrossEntropyLoss,
    "focal": FocalLoss,
    "softened": SoftenedLoss,
    "truncated": TruncatedLoss,
    "ghmc": GHMCLoss,
    "logit_adjusted": LogitAdjustedLoss,
    "dice": DiceLoss,
}.items():
    register_loss(_name, _class)
LOSS_NAMES: tuple[str, ...] = tuple(_LOSSES)
"""The built-in losses (`LOSS_REGISTRY` also holds those registered later)."""


def loss_class(name: str) -> type[TokenLoss]:
    """The class registered under `name`; `ValueError` listing the registered names otherwise."""
    if name not in _LOSSES:
        raise ValueError(f"loss name must be one of {tuple(_LOSSES)}; got {name!r}")
    return _LOSSES[name]


def loss_hyperparameters(name: str) -> dict[str, Any]:
    """The keywords `build_loss(name, ...)` accepts, with their defaults.

    The loss's own ones first, then those every loss shares (`class_weights`, `label_smoothing`
    for the losses that support it, `ignore_index`, `reduction`); `num_labels` is an argument of
    `build_loss`, not a hyperparameter.
    """
    cls = loss_class(name)
    defaults = _keyword_defaults(cls.__init__)
    defaults.update(_keyword_defaults(TokenLoss.__init__))
    defaults.pop("num_labels")
    if not cls.supports_label_smoothing:
        defaults.pop("label_smoothing")
    return defaults


def declared_hyperparameters(name: str) -> tuple[Hyperparameter, ...]:
    """The hyperparameters loss `name` declares (its command-line flags)."""
    return loss_class(name).HYPERPARAMETERS


def loss_search_space(name: str) -> dict[str, SearchSpace | tuple[Any, ...]]:
    """What a tuner searches for loss `name`: `{flag: SearchSpace or tuple of choices}`.

    Keys are the command-line / `LossArguments` / YAML names (`softened_variant`, `dice_alpha`);
    hyperparameters declared with `search=None` are left out.
    """
    return {
        hyperparameter.flag_name: hyperparameter.search
        for hyperparameter in declared_hyperparameters(name)
        if hyperparameter.search is not None
    }


def build_loss(name: str, *, num_labels: int | None = None, **hyperparameters: Any) -> TokenLoss:
    """The loss registered under `name`, built with `hyperparameters`.

    `num_labels`, when given, is used to check the length of per-class vectors (`class_weights`,
    focal's `alpha`, `class_prior`) now rather than at the first call. An unknown name, an
    unexpected keyword or a bad value raises `ValueError` naming the argument and the allowed
    values.
    """
    accepted = loss_hyperparameters(name)
    unexpected = sorted(set(hyperparameters) - set(accepted))
    if unexpected:
        if "label_smoothing" in unexpected:
            supported = tuple(key for key, cls in _LOSSES.items() if cls.supports_label_smoothing)
            raise ValueError(f"label_smoothing is defined for the losses {supported} only, not for {name!r}")
        raise ValueError(f"unexpected hyperparameter(s) {unexpected} for loss {name!r}; accepted: {sorted(accepted)}")
    return _LOSSES[name](num_labels=num_labels, **hyperparameters)
