"""`LossArguments`: the `--loss` flag, every registered loss's declared hyperparameters and the class weights.

The dataclass is generated from the loss registry (`ner_imbalance.losses`): one field per
declared flag, with the loss classes' own defaults, so the command line and the library cannot
disagree; a loss registered later gets its flags from `loss_arguments_class()`. Each instance
checks and parses its hyperparameters once, when it is built.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import field, fields
from typing import Any

from ner_imbalance.config.run_arguments import DataArguments, ModelArguments, NerTrainingArguments
from ner_imbalance.constants import CLASS_WEIGHT_METHODS, EFFECTIVE_NUMBER, EFFECTIVE_NUMBER_BETA, NO_CLASS_WEIGHTS
from ner_imbalance.losses import LOSS_REGISTRY, Hyperparameter, declared_hyperparameters, loss_class

CLASS_WEIGHT_CHOICES = (NO_CLASS_WEIGHTS, *CLASS_WEIGHT_METHODS)


_OTHER_FIELD_NAMES = {f.name for cls in (ModelArguments, DataArguments, NerTrainingArguments) for f in fields(cls)}


class _LossArgumentsMethods:
    """Validation and `loss_kwargs` of the `LossArguments` dataclass that `loss_arguments_class` builds."""

    loss: str
    class_weights: str
    class_weight_beta: float

    def __post_init__(self) -> None:
        """Check the loss, its hyperparameters and the class weights; `ValueError` naming the flag."""
        if self.loss not in LOSS_REGISTRY:
            raise ValueError(f"--loss must be one of {', '.join(LOSS_REGISTRY)}; got {self.loss!r}")
        chosen = {hyperparameter.flag_name for hyperparameter in declared_hyperparameters(self.loss)}
        for flag, (default, owners) in _flag_owners().items():
            if flag not in chosen and getattr(self, flag) != default:
                raise ValueError(f"--{flag} applies to --loss {' / '.join(owners)} only, not --loss {self.loss}")
        self.hyperparameter_values = self._declared_values()
        if self.class_weights not in CLASS_WEIGHT_CHOICES:
            raise ValueError(
                f"--class_weights must be one of {', '.join(CLASS_WEIGHT_CHOICES)}; got {self.class_weights!r}"
            )
        if not (is_number(self.class_weight_beta) and 0 <= self.class_weight_beta < 1):
            raise ValueError(f"--class_weight_beta must be in [0, 1); got {self.class_weight_beta!r}")
        if self.class_weights != EFFECTIVE_NUMBER and self.class_weight_beta != EFFECTIVE_NUMBER_BETA:
            raise ValueError(f"--class_weight_beta applies to --class_weights {EFFECTIVE_NUMBER} only")

    def _declared_values(self) -> dict[str, Any]:
        values = {}
        for hyperparameter in declared_hyperparameters(self.loss):
            flag = hyperparameter.flag_name
            value = hyperparameter.validate(getattr(self, flag), f"--{flag}")
            if value is not None:
                values[hyperparameter.name] = value
        return values

    def loss_kwargs(self, outside_label_id: int = 0) -> dict[str, Any]:
        """The keyword arguments of `build_loss` for the chosen loss: its declared hyperparameters
        (parsed and checked once, when these arguments were built), plus what follows from the
        label list (`outside_label_id` for focal's float `alpha`); class weights, class prior and
        label smoothing excluded.
        """
        values = self.hyperparameter_values
        return {**values, **loss_class(self.loss).corpus_kwargs(values, outside_label_id=outside_label_id)}


def is_number(value: Any) -> bool:
    """An int or float (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _flag_owners() -> dict[str, tuple[Any, list[str]]]:
    """`{flag: (default, [losses that declare it])}` over the registered losses."""
    owners: dict[str, tuple[Any, list[str]]] = {}
    for name in LOSS_REGISTRY:
        for hyperparameter in declared_hyperparameters(name):
            owners.setdefault(hyperparameter.flag_name, (hyperparameter.default, []))[1].append(name)
    return owners


def _loss_fields() -> list[tuple[str, Any, Any]]:
    """The `make_dataclass` fields of `LossArguments`: `--loss`, every declared flag, the class weights."""
    declared: dict[str, tuple[Hyperparameter, list[str]]] = {}
    for name in LOSS_REGISTRY:
        for hyperparameter in declared_hyperparameters(name):
            declared.setdefault(hyperparameter.flag_name, (hyperparameter, []))[1].append(name)
    fields_ = [
        ("loss", str, field(default="focal", metadata={"help": "Per-token loss.", "choices": list(LOSS_REGISTRY)}))
    ]
    for flag, (hyperparameter, owners) in declared.items():
        metadata: dict[str, Any] = {"help": f"{', '.join(owners)}: {hyperparameter.help}"}
        if hyperparameter.choices is not None:
            metadata["choices"] = list(hyperparameter.choices)
        annotation = hyperparameter.type if hyperparameter.default is not None else hyperparameter.type | None
        fields_.append((flag, annotation, field(default=hyperparameter.default, metadata=metadata)))
    fields_ += [
        (
            "class_weights",
            str,
            field(
                default=NO_CLASS_WEIGHTS,
                metadata={
                    "help": "Class weights from training-tag frequencies (every loss).",
                    "choices": list(CLASS_WEIGHT_CHOICES),
                },
            ),
        ),
        (
            "class_weight_beta",
            float,
            field(
                default=EFFECTIVE_NUMBER_BETA,
                metadata={"help": f"{EFFECTIVE_NUMBER} class weights: beta in [0, 1) (Cui et al., CVPR 2019)."},
            ),
        ),
    ]
    return fields_


@functools.lru_cache(maxsize=None)
def _loss_arguments_class(registered: tuple[tuple[str, type], ...]) -> type:
    clashes = {flag for flag, _, _ in _loss_fields()} & _OTHER_FIELD_NAMES
    if clashes:
        raise ValueError(f"loss flag(s) {sorted(clashes)} clash with model, data or training arguments")
    return dataclasses.make_dataclass(
        "LossArguments",
        _loss_fields(),
        bases=(_LossArgumentsMethods,),
        namespace={
            "__module__": __name__,
            "__doc__": "The per-token loss and its hyperparameters (see README: Losses).\n\n"
            "Built by `loss_arguments_class` from the losses' declarations: one field per flag,\n"
            "with the loss classes' own defaults, so the command line and the library cannot disagree.",
        },
    )


def loss_arguments_class() -> type:
    """The `LossArguments` dataclass of the losses registered now (one field per declared flag)."""
    return _loss_arguments_class(tuple(LOSS_REGISTRY.items()))


LossArguments = loss_arguments_class()
"""The `LossArguments` of the built-in losses (`loss_arguments_class()` also covers losses registered later)."""
