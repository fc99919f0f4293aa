"""The command line of a run: the dataclasses `transformers.HfArgumentParser` reads, and their checks.

`arguments` (model, data, loss and training arguments, `parse_arguments`), `decision_flags`
(`--decoding` and the `--calibrate*` flags), `training_flags` (the Trainer flags refused here, count checks).
Every flag is checked here once, before any corpus or model is read.
"""

from ner_imbalance.config.arguments import (
    DataArguments,
    LossArguments,
    ModelArguments,
    NerTrainingArguments,
    argument_parser,
    loss_arguments_class,
    parse_arguments,
)

__all__ = [
    "DataArguments",
    "LossArguments",
    "ModelArguments",
    "NerTrainingArguments",
    "argument_parser",
    "loss_arguments_class",
    "parse_arguments",
]
