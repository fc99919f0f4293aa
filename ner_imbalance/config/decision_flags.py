"""The flags of the decision step: `--decoding` and `--calibrate*`, their dataclass and checks.

How a run turns word-level scores into tags: the decoding (`argmax`, or constrained `viterbi`)
and an optional decision bias chosen on dev (`calibration.search_bias`). `DecisionArguments` is
a base of `arguments.NerTrainingArguments`, so the flags parse with the training arguments; the
run reads them once into its `training.PreparedRun` (the Trainer never uses them). Defaults and
choices come from `ner_imbalance.calibration` and `ner_imbalance.constants`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ner_imbalance.calibration.objective import (
    CALIBRATION_METRICS,
    DEFAULT_MACRO_WEIGHT,
    DEFAULT_METRIC,
    DEFAULT_RECALL_FLOOR,
)
from ner_imbalance.calibration.search import (
    DEFAULT_BOUND,
    DEFAULT_GRID_STEP,
    DEFAULT_MARGIN,
    DEFAULT_OUTSIDE_BOUND,
    DEFAULT_OUTSIDE_STEP,
    DEFAULT_ROUNDS,
    NO_CALIBRATION,
)
from ner_imbalance.constants import CALIBRATION_MODES, DECODING_METHODS, VITERBI

CALIBRATION_CHOICES = (NO_CALIBRATION, *CALIBRATION_MODES)


@dataclass
class DecisionArguments:
    """The decoding of word-level scores into tags, and the decision-bias calibration after training."""

    decoding: str = field(
        default=VITERBI,
        metadata={
            "help": "How word scores become tags in evaluation, calibration and the saved model's predictions: "
            "viterbi (the best tag sequence with valid transitions only: no I-X after O or another type) or "
            "argmax (each word its own best tag).",
            "choices": list(DECODING_METHODS),
        },
    )

    calibrate: str = field(
        default=NO_CALIBRATION,
        metadata={
            "help": "After training, choose an additive logit bias on the validation split and fold it into the "
            "classifier: outside (one bias on the O logit) or per_type (regularised per-label search). "
            "Needs a validation split.",
            "choices": list(CALIBRATION_CHOICES),
        },
    )
    calibration_metric: str = field(
        default=DEFAULT_METRIC,
        metadata={
            "help": "Validation score the calibration maximises: micro_f1, macro_f1, micro_f1_keep_recall (micro F1 "
            "while every type keeps --calibration_recall_floor of its uncalibrated recall) or blend "
            "((1 - w) micro F1 + w macro F1, w = --calibration_macro_weight).",
            "choices": list(CALIBRATION_METRICS),
        },
    )
    calibration_recall_floor: float = field(
        default=DEFAULT_RECALL_FLOOR,
        metadata={
            "help": "micro_f1_keep_recall: no entity type's validation recall may fall below its uncalibrated "
            "recall times this factor, in [0, 1] (0: plain micro_f1)."
        },
    )
    calibration_macro_weight: float = field(
        default=DEFAULT_MACRO_WEIGHT, metadata={"help": "blend: the weight w of macro F1, in [0, 1]."}
    )
    calibration_outside_step: float = field(
        default=DEFAULT_OUTSIDE_STEP, metadata={"help": "Step of the fine grid of the O bias."}
    )
    calibration_outside_bound: float = field(
        default=DEFAULT_OUTSIDE_BOUND, metadata={"help": "The O bias is searched in [-bound, bound]."}
    )
    calibration_grid_step: float = field(
        default=DEFAULT_GRID_STEP, metadata={"help": "per_type: step of the coarse per-label grid."}
    )
    calibration_bound: float = field(
        default=DEFAULT_BOUND,
        metadata={"help": "per_type: each label's bias stays within [-bound, bound] of the O solution."},
    )
    calibration_margin: float = field(
        default=DEFAULT_MARGIN,
        metadata={"help": "per_type: least validation gain (fraction, 0.005 = 0.5 points) for a label's bias to move."},
    )
    calibration_rounds: int = field(
        default=DEFAULT_ROUNDS, metadata={"help": "per_type: most coordinate-ascent rounds."}
    )

    def check_decision_flags(self) -> None:
        """`ValueError` naming the first `--decoding` or `--calibrate*` flag out of its range or choices."""
        if self.decoding not in DECODING_METHODS:
            raise ValueError(f"--decoding must be one of {', '.join(DECODING_METHODS)}, got {self.decoding!r}")
        if self.calibrate not in CALIBRATION_CHOICES:
            raise ValueError(f"--calibrate must be one of {', '.join(CALIBRATION_CHOICES)}, got {self.calibrate!r}")
        if self.calibration_metric not in CALIBRATION_METRICS:
            raise ValueError(
                f"--calibration_metric must be one of {', '.join(CALIBRATION_METRICS)}, got {self.calibration_metric!r}"
            )
        for flag in ("calibration_recall_floor", "calibration_macro_weight"):
            if not 0 <= getattr(self, flag) <= 1:
                raise ValueError(f"--{flag} must lie in [0, 1], got {getattr(self, flag)}")
        for flag in ("calibration_outside_step", "calibration_grid_step"):
            if not getattr(self, flag) > 0:
                raise ValueError(f"--{flag} must be > 0, got {getattr(self, flag)}")
        for flag in ("calibration_outside_bound", "calibration_bound", "calibration_margin"):
            if not getattr(self, flag) >= 0:
                raise ValueError(f"--{flag} must be >= 0, got {getattr(self, flag)}")
        if self.calibration_rounds < 1:
            raise ValueError(f"--calibration_rounds must be >= 1, got {self.calibration_rounds}")

    def calibration_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of `calibration.search_bias` these flags give."""
        return {
            "mode": self.calibrate,
            "metric": self.calibration_metric,
            "recall_floor": self.calibration_recall_floor,
            "macro_weight": self.calibration_macro_weight,
            "outside_step": self.calibration_outside_step,
            "outside_bound": self.calibration_outside_bound,
            "grid_step": self.calibration_grid_step,
            "bound": self.calibration_bound,
            "margin": self.calibration_margin,
            "rounds": self.calibration_rounds,
        }


def check_calibration_split(training_args: DecisionArguments, *, has_validation: bool) -> None:
    """`--calibrate` chooses its bias on the validation split: without one it is an error."""
    if training_args.calibrate != NO_CALIBRATION and not has_validation:
        raise ValueError(
            f"--calibrate {training_args.calibrate} needs a validation split to choose the bias on "
            "(the test split never chooses anything): give --validation_file, or --calibrate none"
        )
