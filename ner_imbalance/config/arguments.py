"""The command line of a run: parse the model, data, loss and training dataclasses, then check them once.

`parse_arguments` accepts a YAML config (as the only argument or with `--config FILE`) plus
command-line overrides, and checks the arguments before any model or corpus is loaded, once:
each dataclass checks its own fields when it is built (`__post_init__`; the dataclasses are in
`run_arguments` and `loss_arguments`), and `validate_arguments` their combinations and the files
they name. The Trainer flags refused here are checked by `training_flags`.
"""

from __future__ import annotations

import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

import yaml
from transformers import HfArgumentParser

from ner_imbalance.config.decision_flags import check_calibration_split
from ner_imbalance.config.loss_arguments import LossArguments, is_number, loss_arguments_class
from ner_imbalance.config.run_arguments import DATA_FILE_FLAGS, DataArguments, ModelArguments, NerTrainingArguments
from ner_imbalance.config.training_flags import RENAMED_FLAGS, check_count, check_training_arguments
from ner_imbalance.constants import (
    NO_AUGMENTATION,
    NO_SAMPLING,
    REPEAT_THRESHOLD,
)
from ner_imbalance.errors import OneLineArgumentParser, UsageError
from ner_imbalance.losses import LOSS_REGISTRY, loss_class
from ner_imbalance.utils.command_line import add_version_flag

TRACEBACK_FLAG = "--traceback"
"""Show the full traceback of an error in a run's preparation (for bug reports) instead of one line."""
RESUME_FROM_LAST = ("true", "last")
"""`--resume_from_checkpoint` values (any case) that mean the last checkpoint in the output folder."""


ARGUMENT_CLASSES = (ModelArguments, DataArguments, LossArguments, NerTrainingArguments)


def argument_classes() -> tuple[type, ...]:
    """`ARGUMENT_CLASSES` with the `LossArguments` of the losses registered now."""
    return tuple(loss_arguments_class() if cls is LossArguments else cls for cls in ARGUMENT_CLASSES)


class OneLineHfArgumentParser(HfArgumentParser, OneLineArgumentParser):
    """`HfArgumentParser` with `OneLineArgumentParser`'s errors: a `UsageError` instead of usage text and an exit
    (the parser of `ner-train`'s flags, and of `ner-tune`'s own)."""


def _yaml_defaults(config_path: Path) -> dict[str, Any]:
    if not config_path.is_file():
        raise FileNotFoundError(f"config file not found: {config_path}")
    with config_path.open(encoding="utf-8") as handle:
        config = yaml.safe_load(handle) or {}
    if not isinstance(config, dict):
        raise ValueError(f"{config_path}: a config must be a mapping of argument names to values")
    known = {name for cls in argument_classes() for name in (f.name for f in fields(cls) if f.init)}
    unknown = sorted(set(config) - known)
    if unknown:
        raise ValueError(f"{config_path}: unknown argument(s) {', '.join(unknown)}")
    return config


def argument_parser() -> HfArgumentParser:
    """The parser of `ner-train`: every argument dataclass plus `--config`, `--traceback` and `--version`.

    Its errors raise a one-line `UsageError` instead of printing the usage text and exiting.
    """
    parser = OneLineHfArgumentParser(argument_classes())
    add_version_flag(parser)
    parser.add_argument("--config", type=Path, default=None, help="A YAML file of arguments; flags override it.")
    parser.add_argument(
        TRACEBACK_FLAG,
        action="store_true",
        help="On a bad flag, file or output folder, show the traceback instead of one error line "
        "(also: environment variable NER_IMBALANCE_DEBUG=1).",
    )
    return parser


def parse_arguments(
    argv: list[str] | None = None,
) -> tuple[ModelArguments, DataArguments, LossArguments, NerTrainingArguments]:
    """Parse `argv` (default: `sys.argv[1:]`) into the four argument dataclasses, then validate them.

    Forms: `CONFIG.yaml` alone; `--config CONFIG.yaml [--flag value ...]` where flags override the
    file; or plain flags.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argument_parser()
    if len(argv) == 1 and argv[0].endswith((".yaml", ".yml")):
        argv = ["--config", argv[0]]
    config_index = argv.index("--config") + 1 if "--config" in argv else None
    if config_index is not None and config_index < len(argv):
        parser.set_defaults(**_yaml_defaults(Path(argv[config_index])))
    *arguments, _extra, unknown = parser.parse_args_into_dataclasses(
        args=argv, look_for_args_file=False, return_remaining_strings=True
    )
    if unknown:
        hints = [f"{flag}: {RENAMED_FLAGS[flag]}" for flag in unknown if flag in RENAMED_FLAGS]
        raise UsageError(f"unrecognized arguments: {' '.join(unknown)}" + (f" ({'; '.join(hints)})" if hints else ""))
    model_args, data_args, loss_args, training_args = arguments
    data_args = data_args.in_data_dir()
    validate_arguments(model_args, data_args, loss_args, training_args)
    return model_args, data_args, loss_args, training_args


def validate_arguments(
    model_args: ModelArguments,
    data_args: DataArguments,
    loss_args: LossArguments,
    training_args: NerTrainingArguments | None = None,
) -> None:
    """Check what can be checked before reading anything, once per run; each failure is one clear line.

    The dataclasses have checked their own fields when they were built (the loss's
    hyperparameters by `LossArguments`, the Trainer and decision flags by `NerTrainingArguments`);
    this checks their combinations and the files and folders they name. Raises `ValueError`
    (`UsageError` for the counts and Trainer flags) naming the flag, or `FileNotFoundError` naming
    the file. The checks that need the corpus or the model's config (per-class vector lengths,
    metric names, `--max_seq_length` against the position embeddings) are made by
    `training.prepare_run`, which builds the run's one loss.
    """
    if training_args is not None and training_args.label_smoothing_factor != 0:
        check_label_smoothing(loss_args.loss, training_args.label_smoothing_factor)
    if isinstance(training_args, NerTrainingArguments) and data_args.uses_files:
        check_calibration_split(training_args, has_validation=data_args.validation_file is not None)
    if data_args.uses_files and data_args.dataset_name:
        raise ValueError("--dataset_name conflicts with --train_file/--validation_file/--test_file: give one source")
    for flag in DATA_FILE_FLAGS:
        path = getattr(data_args, flag)
        if path is not None and not Path(path).is_file():
            raise FileNotFoundError(data_args.missing_file_message(flag))
    model_path = model_args.model_name_or_path
    if model_path and (model_path.startswith((".", "/", "~")) or Path(model_path).exists()):
        if not Path(model_path).expanduser().is_dir():
            raise FileNotFoundError(f"--model_name_or_path: folder not found: {model_path}")
    if data_args.max_seq_length < 8:
        raise ValueError(f"--max_seq_length must be at least 8, got {data_args.max_seq_length}")
    if not 0 <= data_args.stride < data_args.max_seq_length // 2:
        raise ValueError(
            f"--stride must be in [0, max_seq_length/2), got {data_args.stride} "
            f"with --max_seq_length {data_args.max_seq_length}"
        )
    if not 0.0 < data_args.repeat_threshold <= 1.0:
        raise ValueError(f"--repeat_threshold must be in (0, 1], got {data_args.repeat_threshold}")
    uses_threshold = data_args.sentence_sampling != NO_SAMPLING or data_args.augment != NO_AUGMENTATION
    if not uses_threshold and data_args.repeat_threshold != REPEAT_THRESHOLD:
        raise ValueError(
            "--repeat_threshold applies to --sentence_sampling repeat_factor or weighted, or to --augment, only"
        )
    if not 0.0 < data_args.entity_keep_ratio <= 1.0:
        raise ValueError(f"--entity_keep_ratio must be in (0, 1], got {data_args.entity_keep_ratio}")
    for flag in ("max_train_samples", "max_eval_samples"):
        check_count(flag, getattr(data_args, flag))
    if training_args is not None:
        check_training_arguments(training_args)


def check_label_smoothing(loss: str, label_smoothing_factor: float) -> float:
    """`--label_smoothing_factor` for `--loss loss`: in [0, 1], and nonzero only for losses that
    define label smoothing (the cross-entropy-based ones); `ValueError` naming the flag otherwise."""
    if not (is_number(label_smoothing_factor) and 0 <= label_smoothing_factor <= 1):
        raise ValueError(f"--label_smoothing_factor must be in [0, 1]; got {label_smoothing_factor!r}")
    if label_smoothing_factor and not loss_class(loss).supports_label_smoothing:
        supported = ", ".join(name for name, cls in LOSS_REGISTRY.items() if cls.supports_label_smoothing)
        raise ValueError(
            f"--label_smoothing_factor is defined for the cross-entropy-based losses ({supported}) only, "
            f"not for --loss {loss}"
        )
    return float(label_smoothing_factor)
