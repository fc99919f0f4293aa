"""The Trainer flags this package checks itself: counts, and the flags it cannot honour.

`check_training_arguments` refuses, with one line naming the flag, counts below 1 and the
`transformers.TrainingArguments` flags `ImbalanceTrainer` cannot honour (the table, with the
reasons and the tests, is docs/training_flags.md); `RENAMED_FLAGS` are the hints
`arguments.parse_arguments` gives for flags of older transformers versions or of HF examples.
"""

from __future__ import annotations

from transformers import TrainingArguments

from ner_imbalance.errors import UsageError

# Flags of older transformers versions or of HF examples that this transformers no longer has.
RENAMED_FLAGS = {
    "--group_by_length": "use --train_sampling_strategy group_by_length (the default here)",
    "--evaluation_strategy": "use --eval_strategy",
    "--include_inputs_for_metrics": "it is --include_for_metrics in this transformers, which is refused here "
    "(see docs/training_flags.md)",
    "--past_index": "this transformers has no such flag (token-classification models keep no past state)",
}


def check_training_arguments(training_args: TrainingArguments) -> None:
    """Refuse, with one line naming the flag, counts below 1 and the Trainer flags this package cannot honour.

    The table of Trainer flags that behave differently here, with the reasons, is docs/training_flags.md.
    """
    for flag in ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps"):
        check_count(flag, getattr(training_args, flag))
    check_count("eval_accumulation_steps", training_args.eval_accumulation_steps)
    check_count("save_total_limit", training_args.save_total_limit)
    if training_args.do_train and training_args.max_steps <= 0 and training_args.num_train_epochs <= 0:
        raise UsageError(
            f"--num_train_epochs must be > 0 (or give --max_steps >= 1), got {training_args.num_train_epochs}"
        )
    if training_args.resume_from_checkpoint and getattr(training_args, "overwrite_output_dir", False):
        raise UsageError(
            "--overwrite_output_dir deletes the output folder that --resume_from_checkpoint continues from: give one"
        )
    refused = {
        "--prediction_loss_only": (
            training_args.prediction_loss_only,
            "evaluation needs the predictions: entity F1 is computed from them at word level",
        ),
        "--batch_eval_metrics": (
            training_args.batch_eval_metrics,
            "entity scores need a whole split's windows merged back into sentences, not one batch at a time",
        ),
        "--include_for_metrics": (
            bool(training_args.include_for_metrics),
            "the word-level metrics use only the predictions; inputs or losses would be gathered for nothing",
        ),
        "--eval_do_concat_batches false": (
            not training_args.eval_do_concat_batches,
            "the word-level metrics map every prediction row to its window, which needs the batches concatenated",
        ),
        "--label_names": (
            training_args.label_names not in (None, ["labels"]),
            "ImbalanceTrainer's loss and metrics read the aligned `labels` column and no other",
        ),
        "--remove_unused_columns false": (
            not training_args.remove_unused_columns,
            "the windows carry columns the model does not take (example_index, word_ids, length)",
        ),
        "--dataloader_drop_last": (
            training_args.dataloader_drop_last,
            "the Trainer drops the last evaluation batch too, so some words would get no prediction",
        ),
    }
    for flag, (given, reason) in refused.items():
        if given:
            raise UsageError(f"{flag} is not supported by ImbalanceTrainer: {reason} (see docs/training_flags.md)")


def check_count(flag: str, value: int | None) -> None:
    """Refuse a count flag below 1 (`None`: not given) with one line naming it."""
    if value is not None and value < 1:
        raise UsageError(f"--{flag} must be at least 1, got {value}")
