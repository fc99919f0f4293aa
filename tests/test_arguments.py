"""Command-line and YAML arguments: parsed, overridden, and rejected before anything loads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ner_imbalance.arguments import parse_arguments

REPO = Path(__file__).parents[1]


def test_defaults_are_offline_focal_on_the_demo_corpus(tmp_path):
    model_args, data_args, loss_args, training_args = parse_arguments(["--output_dir", str(tmp_path)])
    assert model_args.model_name_or_path is None
    assert not data_args.uses_files and data_args.dataset_name is None
    assert loss_args.loss == "focal"
    assert training_args.eval_strategy == "epoch"
    assert training_args.metric_for_best_model == "f1"
    assert training_args.train_sampling_strategy == "group_by_length"


def test_yaml_config_alone_and_with_overrides(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(f"loss: ghmc\nbins: 30\nmomentum: 0.5\nnum_train_epochs: 2\noutput_dir: {tmp_path}\n")
    _, _, loss_args, training_args = parse_arguments([str(config)])
    assert (loss_args.loss, loss_args.bins, loss_args.momentum) == ("ghmc", 30, 0.5)
    assert training_args.num_train_epochs == 2
    _, _, loss_args, training_args = parse_arguments(
        ["--config", str(config), "--bins", "10", "--num_train_epochs", "1"]
    )
    assert (loss_args.loss, loss_args.bins) == ("ghmc", 10)
    assert training_args.num_train_epochs == 1


def test_calibration_flags_become_search_arguments():
    *_, training_args = parse_arguments(
        ["--calibrate", "per_type", "--calibration_metric", "macro_f1", "--calibration_bound", "1.5"]
    )
    assert training_args.calibration_kwargs() == {
        "mode": "per_type",
        "metric": "macro_f1",
        "outside_step": 0.05,
        "outside_bound": 5.0,
        "grid_step": 0.5,
        "bound": 1.5,
        "margin": 0.005,
        "rounds": 3,
    }
    assert parse_arguments([])[3].calibrate == "none", "off until the study measures it"


def test_loss_kwargs_follow_the_chosen_loss():
    _, _, loss_args, _ = parse_arguments(["--loss", "softened", "--K", "4", "--softened_variant", "literal"])
    assert loss_args.loss_kwargs() == {"K": 4.0, "variant": "literal"}
    _, _, loss_args, _ = parse_arguments(["--loss", "focal", "--gamma", "1", "--alpha", "0.25"])
    assert loss_args.loss_kwargs(outside_label_id=0) == {"gamma": 1.0, "alpha": 0.25, "outside_label_id": 0}
    _, _, loss_args, _ = parse_arguments(["--loss", "ghmc", "--bins", "30", "--ghmc_variant", "sigmoid"])
    assert loss_args.loss_kwargs() == {"bins": 30, "momentum": 0.0, "variant": "sigmoid"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--loss", "focal", "--gamma", "-1"], "gamma"),
        (["--loss", "softened", "--K", "0"], "K"),
        (["--loss", "ghmc", "--bins", "0"], "bins"),
        (["--loss", "ghmc", "--momentum", "1.0"], "momentum"),
        (["--loss", "ce", "--alpha", "0.25"], "--alpha"),
        (["--loss", "focal", "--alpha", "a,b"], "--alpha"),
        (["--train_file", "missing.conll"], "--train_file"),
        (["--train_file", __file__, "--dataset_name", "conll2003"], "--dataset_name"),
        (["--model_name_or_path", "./no/such/model"], "--model_name_or_path"),
        (["--stride", "100", "--max_seq_length", "128"], "--stride"),
        (["--entity_keep_ratio", "0"], "--entity_keep_ratio"),
        (["--calibrate", "outside", "--calibration_outside_step", "0"], "--calibration_outside_step"),
        (["--calibrate", "per_type", "--calibration_grid_step", "-0.5"], "--calibration_grid_step"),
        (["--calibrate", "per_type", "--calibration_bound", "-1"], "--calibration_bound"),
        (["--calibrate", "per_type", "--calibration_margin", "-0.01"], "--calibration_margin"),
        (["--calibrate", "per_type", "--calibration_rounds", "0"], "--calibration_rounds"),
        (["--train_file", __file__, "--calibrate", "outside"], "--calibrate outside needs a validation split"),
    ],
)
def test_bad_arguments_fail_before_loading_with_the_argument_named(argv, message):
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        parse_arguments(argv)


def test_unknown_yaml_key_names_the_file_and_key(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("loss: focal\ngama: 2\n")
    with pytest.raises(ValueError, match=r"bad\.yaml.*gama"):
        parse_arguments([str(config)])


def run_script(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "scripts" / "train_ner.py"), *argv], capture_output=True, text=True, timeout=120
    )


def test_script_rejects_an_unknown_loss_in_one_line():
    completed = run_script("--loss", "dice")
    assert completed.returncode == 2
    assert "--loss" in completed.stderr and "dice" in completed.stderr


def test_script_reports_bad_hyperparameter_in_one_line_before_loading_a_model():
    completed = run_script("--loss", "focal", "--gamma", "-2")
    assert completed.returncode == 2
    error_lines = [line for line in completed.stderr.splitlines() if "error" in line]
    assert len(error_lines) == 1 and "gamma" in error_lines[0]


def test_help_documents_every_loss_and_data_flag():
    completed = run_script("--help")
    assert completed.returncode == 0
    for flag in (
        "--loss",
        "--gamma",
        "--alpha",
        "--K",
        "--softened_variant",
        "--threshold",
        "--bins",
        "--momentum",
        "--class_weights",
        "--train_file",
        "--validation_file",
        "--test_file",
        "--dataset_name",
        "--text_column",
        "--label_column",
        "--max_seq_length",
        "--stride",
        "--label_all_tokens",
        "--entity_keep_ratio",
        "--calibrate",
        "--calibration_metric",
        "--calibration_grid_step",
        "--calibration_bound",
        "--calibration_margin",
        "--model_name_or_path",
        "--config",
        "--report_to",
    ):
        assert flag in completed.stdout, flag
