"""Issue 16: every TrainingArguments flag on the paths ImbalanceTrainer changes either works or is refused.

The refused flags fail in `parse_arguments`, before any corpus or model loads, with one line naming
the flag and the reason; the flags that work as in the plain Trainer are exercised on the tiny
corpus. The table is docs/training_flags.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tiny_models import REPO, tiny_corpus_flags

from ner_imbalance.config.arguments import parse_arguments
from ner_imbalance.errors import UsageError
from ner_imbalance.training.predictions import evaluate_split
from ner_imbalance.training.run import build_trainer

DOCS = REPO / "docs" / "training_flags.md"

REFUSED = {
    "--prediction_loss_only": ["--prediction_loss_only", "true"],
    "--batch_eval_metrics": ["--batch_eval_metrics", "true"],
    "--include_for_metrics": ["--include_for_metrics", "inputs"],
    "--eval_do_concat_batches false": ["--eval_do_concat_batches", "false"],
    "--label_names": ["--label_names", "ner_labels"],
    "--remove_unused_columns false": ["--remove_unused_columns", "false"],
    "--dataloader_drop_last": ["--dataloader_drop_last", "true"],
}
NOT_IN_THIS_TRANSFORMERS = {
    "--group_by_length": "--train_sampling_strategy group_by_length",
    "--evaluation_strategy": "--eval_strategy",
    "--include_inputs_for_metrics": "--include_for_metrics",
    "--past_index": "no such flag",
}


def tiny_flags(model_dir: Path, output_dir: Path, *extra: str) -> list[str]:
    return tiny_corpus_flags(
        model_dir,
        output_dir,
        "--max_seq_length",
        "32",
        "--stride",
        "8",
        "--use_cpu",
        "true",
        "--report_to",
        "none",
        "--disable_tqdm",
        "true",
        *extra,
    )


@pytest.mark.parametrize("flag", sorted(REFUSED))
def test_refused_flag_fails_before_loading_naming_the_flag_and_why(flag):
    with pytest.raises(UsageError) as caught:
        parse_arguments(["--output_dir", "unused", *REFUSED[flag]])
    message = str(caught.value)
    assert message.startswith(f"{flag} is not supported by ImbalanceTrainer: ") and "\n" not in message
    assert flag.split()[0] in DOCS.read_text(), "every refusal is in the table"


@pytest.mark.parametrize("flag", sorted(NOT_IN_THIS_TRANSFORMERS))
def test_flags_of_older_transformers_are_refused_with_what_to_use(flag):
    with pytest.raises(UsageError, match=NOT_IN_THIS_TRANSFORMERS[flag]):
        parse_arguments([flag, "true"])


# Each refused flag at its accepted value (its default; `--include_for_metrics` takes no empty list on the
# command line, so it is left out), with the training-arguments field it sets and the value parsed.
ACCEPTED = {
    "--prediction_loss_only": (["--prediction_loss_only", "false"], "prediction_loss_only", False),
    "--batch_eval_metrics": (["--batch_eval_metrics", "false"], "batch_eval_metrics", False),
    "--include_for_metrics": ([], "include_for_metrics", []),
    "--eval_do_concat_batches false": (["--eval_do_concat_batches", "true"], "eval_do_concat_batches", True),
    "--label_names": (["--label_names", "labels"], "label_names", ["labels"]),
    "--remove_unused_columns false": (["--remove_unused_columns", "true"], "remove_unused_columns", True),
    "--dataloader_drop_last": (["--dataloader_drop_last", "false"], "dataloader_drop_last", False),
}


@pytest.mark.parametrize("flag", sorted(REFUSED))
def test_default_values_of_the_refused_flags_are_accepted(flag):
    argv, field, value = ACCEPTED[flag]
    training_args = parse_arguments(["--output_dir", "unused", *argv])[-1]
    assert getattr(training_args, field) == value


def test_all_refused_flags_at_their_accepted_values_parse_together():
    argv = [arg for flag in sorted(ACCEPTED) for arg in ACCEPTED[flag][0]]
    training_args = parse_arguments(["--output_dir", "unused", *argv])[-1]
    assert {field: getattr(training_args, field) for _, field, _ in ACCEPTED.values()} == {
        field: value for _, field, value in ACCEPTED.values()
    }


def test_load_best_model_without_evaluation_is_refused_naming_both_flags():
    with pytest.raises(UsageError, match="--load_best_model_at_end.*--eval_strategy no"):
        parse_arguments(["--eval_strategy", "no"])


@pytest.fixture(scope="module")
def tiny_trainer(tmp_path_factory, tiny_model_dir):
    return build_trainer(*parse_arguments(tiny_flags(tiny_model_dir, tmp_path_factory.mktemp("flags") / "run")))


def test_eval_accumulation_steps_gives_the_same_predictions_and_scores(tiny_trainer):
    trainer, corpus = tiny_trainer
    trainer.args.per_device_eval_batch_size = 4  # several batches, so accumulation moves data mid-loop
    reference = trainer.predict(corpus.windows["validation"])
    trainer.args.eval_accumulation_steps = 1
    try:
        accumulated = trainer.predict(corpus.windows["validation"])
    finally:
        trainer.args.eval_accumulation_steps = None
    np.testing.assert_array_equal(accumulated.predictions, reference.predictions)
    scores = {key: value for key, value in reference.metrics.items() if not key.endswith(("runtime", "second"))}
    assert {key: accumulated.metrics[key] for key in scores} == pytest.approx(scores)
    assert "test_f1" in scores


@pytest.mark.parametrize("strategy", ["group_by_length", "batch_rebalance", "random", "sequential"])
def test_every_train_sampling_strategy_visits_every_window_once(strategy, tiny_model_dir, tmp_path):
    arguments = parse_arguments(tiny_flags(tiny_model_dir, tmp_path, "--train_sampling_strategy", strategy))
    trainer, corpus = build_trainer(*arguments)
    batches = list(trainer.get_train_dataloader())
    assert sum(len(batch["input_ids"]) for batch in batches) == len(corpus.windows["train"])
    if strategy == "sequential":
        first = corpus.windows["train"][0]["input_ids"]
        assert batches[0]["input_ids"][0][: len(first)].tolist() == first


def test_results_files_are_written_atomically_and_all_results_holds_only_this_trainer(tiny_trainer):
    trainer, corpus = tiny_trainer
    output_dir = Path(trainer.args.output_dir)
    (output_dir / "all_results.json").write_text('{"eval_f1": 0.99}')  # as an earlier run might have left
    trainer._saved_metrics.clear()
    metrics = evaluate_split(trainer, corpus, "validation", "eval")
    written = json.loads((output_dir / "all_results.json").read_text())
    assert written == pytest.approx(metrics)
    assert not list(output_dir.glob(".*.tmp"))
