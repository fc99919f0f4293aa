"""Issue 35: a run ends on its score; its log lines are short and its stderr carries no warning of ours.

The first test runs a real tiny training as a subprocess, as a user would, since pytest's
`filterwarnings` hides FutureWarnings in this process; the others check the printing callbacks and
the summary in this process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from tiny_models import REPO, TINY_CORPUS, tiny_corpus_flags
from transformers import TrainerControl, TrainerState

from ner_imbalance.calibration import CalibrationResult
from ner_imbalance.config.run_arguments import NerTrainingArguments
from ner_imbalance.constants import GOLD_PROBABILITY_PREFIX, LOSS_SHARE_PREFIX
from ner_imbalance.training.console import (
    PRINTED_LOG_KEYS,
    SUMMARY_TITLE,
    ConsolePrinterCallback,
    ConsoleProgressCallback,
    printed_logs,
    run_summary,
)

TRAIN_SCRIPT = REPO / "scripts" / "train_ner.py"
SUMMARY_HEADER = f"===== {SUMMARY_TITLE} ====="
HIDDEN_PREFIXES = (LOSS_SHARE_PREFIX, GOLD_PROBABILITY_PREFIX, "loss_stats/")


def test_a_real_run_prints_short_log_lines_no_warnings_and_ends_on_its_summary(tmp_path, tiny_model_dir):
    output = tmp_path / "run"
    flags = tiny_corpus_flags(tiny_model_dir, output, "--test_file", str(TINY_CORPUS / "test.conll"))
    flags += ["--max_steps", "2", "--logging_steps", "1", "--eval_strategy", "steps", "--eval_steps", "1"]
    flags += ["--save_strategy", "steps", "--save_steps", "1", "--max_seq_length", "32", "--stride", "8"]
    flags += ["--per_device_train_batch_size", "16", "--report_to", "none", "--loss", "ghmc"]
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONWARNINGS"}
    result = subprocess.run(
        [sys.executable, str(TRAIN_SCRIPT), *flags],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        env=environment,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for warning in ("pin_memory", "null_placement", "FutureWarning", "UserWarning"):
        assert warning not in result.stderr, warning
    printed = result.stdout + result.stderr
    assert not any(prefix in printed for prefix in HIDDEN_PREFIXES)
    log_lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert sum("'grad_norm'" in line and "'learning_rate'" in line for line in log_lines) == 2
    assert sum("'eval_f1'" in line for line in log_lines) == 2
    # The logs keep every key: the log history has the loss shares and GHM-C's statistics.
    history = json.loads((output / "trainer_state.json").read_text(encoding="utf-8"))["log_history"]
    training_logs = [entry for entry in history if "loss" in entry]
    assert all(any(key.startswith(prefix) for key in entry) for entry in training_logs for prefix in HIDDEN_PREFIXES)

    lines = result.stdout.rstrip("\n").splitlines()
    summary = lines[lines.index(SUMMARY_HEADER) :]
    assert lines.count(SUMMARY_HEADER) == 1 and summary[-1] == f"model: {output}"
    dev = json.loads((output / "eval_results.json").read_text(encoding="utf-8"))
    test = json.loads((output / "test_results.json").read_text(encoding="utf-8"))
    assert summary[2].split() == ["micro", "F1", f"{100 * dev['eval_f1']:.2f}", f"{100 * test['test_f1']:.2f}"]
    per_person = next(line for line in summary if line.startswith("PER "))
    assert per_person.split()[3:5] == [f"{100 * dev['eval_PER_f1']:.2f}", str(int(dev["eval_PER_support"]))]
    assert "decoding: viterbi" in summary and "calibration: none" in summary
    assert not any(line.startswith(("  eval_", "  test_", "*****")) for line in lines)


LOGS = {
    "loss": 1.25,
    "grad_norm": 3.5,
    "learning_rate": 5e-5,
    f"{LOSS_SHARE_PREFIX}O": 0.7,
    f"{GOLD_PROBABILITY_PREFIX}PER": 0.1,
    "loss_stats/bin_share_0": 0.2,
    "epoch": 0.5,
}


def test_printed_logs_keep_the_progress_keys_only():
    assert printed_logs(LOGS) == {"loss": 1.25, "grad_norm": 3.5, "learning_rate": 5e-5, "epoch": 0.5}
    evaluation = {"eval_loss": 0.5, "eval_f1": 0.25, "eval_PER_f1": 0.5, "eval_runtime": 1.0, "epoch": 1.0}
    assert list(printed_logs(evaluation)) == ["eval_loss", "eval_f1", "epoch"]
    assert set(PRINTED_LOG_KEYS) >= {"loss", "grad_norm", "learning_rate", "epoch"}


@pytest.mark.parametrize("callback_class", [ConsolePrinterCallback, ConsoleProgressCallback])
def test_the_console_callbacks_print_short_lines_and_leave_the_logs_whole(tmp_path, capsys, callback_class):
    arguments = NerTrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True)
    state, control = TrainerState(), TrainerControl()
    callback = callback_class()
    callback.on_train_begin(arguments, state, control)
    logs = dict(LOGS)
    callback.on_log(arguments, state, control, logs=logs)
    callback.on_log(arguments, state, control, logs={f"{LOSS_SHARE_PREFIX}O": 0.7})  # nothing to show: no line
    if hasattr(callback, "on_train_end"):
        callback.on_train_end(arguments, state, control)
    printed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert printed == ["{'loss': '1.25', 'grad_norm': '3.5', 'learning_rate': '5e-05', 'epoch': '0.5'}"]
    assert logs == LOGS


def test_a_cpu_run_does_not_pin_memory(tmp_path):
    assert NerTrainingArguments(output_dir=str(tmp_path), report_to="none").dataloader_pin_memory is False


def test_the_summary_names_the_calibration_and_the_splits_it_has():
    dev = {"eval_f1": 0.5, "eval_macro_f1": 0.25, "eval_precision": 0.5, "eval_recall": 0.5}
    dev |= {"eval_PER_precision": 1.0, "eval_PER_recall": 0.5, "eval_PER_f1": 2 / 3, "eval_PER_support": 4.0}
    dev |= {"eval_LOC_precision": 0.0, "eval_LOC_recall": 0.0, "eval_LOC_f1": 0.0, "eval_LOC_support": 2.0}
    calibration = CalibrationResult(
        bias=np.array([-1.5, 0.0, 0.0, 0.0, 0.0]),
        labels=("O", "B-LOC", "I-LOC", "B-PER", "I-PER"),
        mode="outside",
        metric="f1",
        score_before=0.4,
        score_after=0.5,
        scores_before={},
        scores_after={},
        candidates=10,
        rounds=0,
    )
    summary = run_summary(
        {"train": {"train_loss": 1.0}, "eval": dev},
        ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"],
        decoding="argmax",
        calibration=calibration,
        output_dir="outputs/x",
    ).splitlines()
    assert summary[0] == SUMMARY_HEADER
    assert summary[1].split() == ["dev"]
    assert summary[2].split() == ["micro", "F1", "50.00"] and summary[3].split() == ["macro", "F1", "25.00"]
    assert summary[4].split() == ["type", "dev", "P", "dev", "R", "dev", "F1", "dev", "n"]
    assert summary[5].split() == ["LOC", "0.00", "0.00", "0.00", "2"]
    assert summary[6].split() == ["PER", "100.00", "50.00", "66.67", "4"]
    assert summary[7:] == [
        "decoding: argmax",
        "calibration: outside on dev (f1 40.00 -> 50.00; logit biases O -1.50)",
        "model: outputs/x",
    ]
