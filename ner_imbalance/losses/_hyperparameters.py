"""How a loss declares its hyperparameters once: `Hyperparameter`, `Condition`, `SearchSpace`.

A loss class lists its tunable hyperparameters in `HYPERPARAMETERS`. From that one declaration
come the constructor's checks (`TokenLoss.check_hyperparameters`), the command-line flags of
`ner_imbalance.config.loss_arguments.LossArguments` (name, type, default, help, choices) with their
validation, `LossArguments.loss_kwargs()`, and the search space a tuner reads
(`loss_search_space`). The constructor's keyword default is the declaration's (write
`gamma: float = GAMMA.default`); `register_loss` checks that they agree.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


def is_real_number(value: Any) -> bool:
    """An int or float (not a bool) that is finite."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def is_integer(value: Any) -> bool:
    """An int that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class Condition:
    """A test on a value and the words that describe the allowed values in an error message."""

    test: Callable[[Any], bool]
    allowed: str

    def __call__(self, value: Any) -> bool:
        return bool(self.test(value))


def real_in(
    low: float = -math.inf, high: float = math.inf, *, low_open: bool = False, high_open: bool = False
) -> Condition:
    """A finite real number in the interval from `low` to `high` (closed ends unless told open)."""
    low_text = "" if low == -math.inf else f"{'>' if low_open else '>='} {low:g}"
    high_text = "" if high == math.inf else f"{'<' if high_open else '<='} {high:g}"
    if low_text and high_text:
        allowed = f"a float in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    else:
        allowed = f"a finite float {low_text or high_text}".rstrip()

    def test(value: Any) -> bool:
        if not is_real_number(value):
            return False
        above = value > low if low_open else value >= low
        below = value < high if high_open else value <= high
        return above and below

    return Condition(test, allowed)


def integer_at_least(low: int) -> Condition:
    """An int (not a bool) >= `low`."""
    return Condition(lambda value: is_integer(value) and value >= low, f"an int >= {low}")


def one_of(choices: tuple[Any, ...]) -> Condition:
    """One of `choices`."""
    return Condition(lambda value: value in choices, f"one of {choices}")


@dataclass(frozen=True)
class SearchSpace:
    """A range a tuner samples a numeric hyperparameter from (log-uniformly when `log`)."""

    low: float
    high: float
    log: bool = False

    def __post_init__(self) -> None:
        if not self.low < self.high or (self.log and self.low <= 0):
            raise ValueError(f"SearchSpace needs low < high (and low > 0 when log); got {self}")


@dataclass(frozen=True)
class Hyperparameter:
    """One hyperparameter of a loss, declared once.

    Args:
        name: The keyword of the loss's constructor.
        type: The command-line type (`float`, `int`, `str` or `bool`).
        default: The default, also the constructor's keyword default.
        help: One line for `--help`, without the loss's name (added in front).
        flag: The command-line name when it is not `name` (for instance `ghmc_variant`), so that
            two losses with a `variant` each get distinct flags.
        choices: The allowed values of a categorical hyperparameter.
        check: The condition a value must meet (for `choices`, membership is the default check).
        parse: Turns the command-line value into the constructor's (focal's `--alpha` string
            into one float or a list); it raises `ValueError` on a bad value.
        search: What a tuner searches: a `SearchSpace` for numbers, a tuple of values for a
            categorical, None when it is not tuned.
    """

    name: str
    type: type
    default: Any
    help: str
    flag: str | None = None
    choices: tuple[Any, ...] | None = None
    check: Condition | None = None
    parse: Callable[[Any], Any] | None = None
    search: SearchSpace | tuple[Any, ...] | None = None

    def __post_init__(self) -> None:
        if not self.name.isidentifier() or not self.flag_name.isidentifier():
            raise ValueError(f"hyperparameter name and flag must be identifiers; got {self.name!r}, {self.flag!r}")
        if self.check is None and self.choices is not None:
            object.__setattr__(self, "check", one_of(self.choices))
        if self.default is not None and self.parse is None and not self.is_valid(self.default):
            raise ValueError(f"the default of {self.name} does not pass its own check: {self.default!r}")

    @property
    def flag_name(self) -> str:
        """The command-line name (without `--`), also the `LossArguments` field and the YAML key."""
        return self.flag or self.name

    def is_valid(self, value: Any) -> bool:
        return self.check is None or self.check(value)

    def validate(self, value: Any, argument: str | None = None) -> Any:
        """The value for the constructor (parsed when `parse` is set); `ValueError` naming
        `argument` (default: the constructor keyword) when it is not allowed."""
        argument = argument or self.name
        if self.parse is not None and value is not None:
            try:
                value = self.parse(value)
            except ValueError as error:
                raise ValueError(f"{argument}: {error}") from None
        if value is not None and not self.is_valid(value):
            allowed = self.check.allowed if self.check is not None else "valid"
            raise ValueError(f"{argument} must be {allowed}; got {value!r}")
        return value

    def same_flag_as(self, other: Hyperparameter) -> bool:
        """Whether two losses may share this flag: same name, type, default and choices."""
        return (self.flag_name, self.type, self.default, self.choices) == (
            other.flag_name,
            other.type,
            other.default,
            other.choices,
        )
