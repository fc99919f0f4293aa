"""Command-line and YAML arguments: parsed, overridden, and rejected before anything loads."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest
import yaml
from tiny_models import REPO

from ner_imbalance.config.arguments import LossArguments, argument_parser, loss_arguments_class, parse_arguments
from ner_imbalance.losses import (
    LOSS_REGISTRY,
    Hyperparameter,
    SearchSpace,
    TokenLoss,
    build_loss,
    loss_search_space,
    real_in,
    register_loss,
    unregister_loss,
)


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
        "recall_floor": 0.8,
        "macro_weight": 0.5,
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
    assert loss_args.loss_kwargs(outside_label_id=0) == {
        "gamma": 1.0,
        "alpha": 0.25,
        "variant": "softmax",
        "outside_label_id": 0,
    }
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
    completed = run_script("--loss", "dicey")
    assert completed.returncode == 2
    assert "--loss" in completed.stderr and "dicey" in completed.stderr


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
        "--class_weight_beta",
        "--ghmc_variant",
        "--tau",
        "--dice_alpha",
        "--dice_smooth",
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


# Flags derived from the losses' declarations


class ScaledCrossEntropy(TokenLoss):
    """A throwaway loss: cross-entropy times a factor."""

    HYPERPARAMETERS = (
        Hyperparameter(
            "scale",
            float,
            2.0,
            "factor on cross-entropy, > 0.",
            flag="scaled_scale",
            check=real_in(0.0, low_open=True),
            search=SearchSpace(0.5, 4.0, log=True),
        ),
        Hyperparameter("variant", str, "plain", "a choice.", flag="scaled_variant", choices=("plain", "other")),
    )

    def __init__(self, *, scale: float = 2.0, variant: str = "plain", **common):
        super().__init__(**common)
        self.check_hyperparameters(scale=scale, variant=variant)
        self.scale = scale

    def token_losses(self, batch):
        return -self.scale * batch.target_log_prob


@pytest.fixture
def scaled_loss_registered():
    register_loss("scaled", ScaledCrossEntropy)
    try:
        yield
    finally:
        unregister_loss("scaled")


def test_a_loss_registered_later_gets_its_flags_checks_and_search_space(scaled_loss_registered, tmp_path):
    help_text = argument_parser().format_help()
    assert "--scaled_scale" in help_text and "--scaled_variant" in help_text and "scaled:" in help_text
    _, _, loss_args, _ = parse_arguments(["--loss", "scaled", "--scaled_scale", "3", "--scaled_variant", "other"])
    assert loss_args.loss_kwargs() == {"scale": 3.0, "variant": "other"}
    assert isinstance(build_loss(loss_args.loss, **loss_args.loss_kwargs()), ScaledCrossEntropy)
    with pytest.raises(ValueError, match="--scaled_scale"):
        parse_arguments(["--loss", "scaled", "--scaled_scale", "0"])
    with pytest.raises(ValueError, match="--scaled_scale applies to --loss scaled only"):
        parse_arguments(["--loss", "ce", "--scaled_scale", "3"])
    config = tmp_path / "scaled.yaml"
    config.write_text("loss: scaled\nscaled_scale: 1.5\n")
    assert parse_arguments([str(config)])[2].loss_kwargs()["scale"] == 1.5
    assert loss_search_space("scaled") == {"scaled_scale": SearchSpace(0.5, 4.0, log=True)}


def test_after_unregistering_the_flag_is_gone():
    register_loss("scaled", ScaledCrossEntropy)
    unregister_loss("scaled")
    assert "--scaled_scale" not in argument_parser().format_help()
    assert loss_arguments_class() is LossArguments
    with pytest.raises(ValueError, match="built in"):
        unregister_loss("ce")


def test_registration_refuses_clashing_or_inconsistent_declarations():
    with pytest.raises(ValueError, match="already registered"):
        register_loss("focal", ScaledCrossEntropy)

    class WrongDefault(ScaledCrossEntropy):
        HYPERPARAMETERS = (Hyperparameter("scale", float, 5.0, "x.", flag="wrong_scale"),)

    with pytest.raises(ValueError, match="defaults to"):
        register_loss("wrong_default", WrongDefault)

    class SameFlagOtherType(ScaledCrossEntropy):
        HYPERPARAMETERS = (Hyperparameter("scale", float, 2.0, "x.", flag="gamma"),)

    with pytest.raises(ValueError, match="--gamma"):
        register_loss("same_flag", SameFlagOtherType)
    assert "same_flag" not in LOSS_REGISTRY and "wrong_default" not in LOSS_REGISTRY


def test_every_flag_keeps_its_name_and_default_from_the_loss_classes():
    defaults = {field.name: field.default for field in dataclasses.fields(LossArguments)}
    assert defaults == {
        "loss": "focal",
        "gamma": 3.0,
        "alpha": None,
        "focal_variant": "softmax",
        "K": 4.0,
        "softened_variant": "argmax",
        "threshold": 0.5,
        "bins": 10,
        "momentum": 0.0,
        "ghmc_variant": "softmax",
        "tau": 1.0,
        "dice_alpha": 1.0,
        "dice_smooth": 1.0,
        "class_weights": "none",
        "class_weight_beta": 0.999,
    }


def test_search_spaces_of_the_built_in_losses():
    assert loss_search_space("ce") == {}
    assert loss_search_space("softened") == {
        "K": SearchSpace(0.5, 8.0, log=True),
        "softened_variant": ("argmax", "literal"),
    }
    assert set(loss_search_space("ghmc")) == {"bins", "momentum", "ghmc_variant"}
    assert set(loss_search_space("dice")) == {"dice_alpha", "dice_smooth"}
    assert set(loss_search_space("logit_adjusted")) == {"tau"}


@pytest.mark.parametrize("config", sorted((REPO / "configs").glob("*.yaml")), ids=lambda path: path.name)
def test_every_committed_config_gives_valid_loss_arguments(config):
    settings = yaml.safe_load(config.read_text())
    loss_fields = {field.name for field in dataclasses.fields(LossArguments)}
    loss_args = LossArguments(**{key: value for key, value in settings.items() if key in loss_fields})
    assert loss_args.loss == settings["loss"]
    loss_args.loss_kwargs()


def test_new_losses_and_weights_from_the_command_line():
    _, _, loss_args, _ = parse_arguments(["--loss", "logit_adjusted", "--tau", "0.5"])
    assert loss_args.loss_kwargs() == {"tau": 0.5}
    _, _, loss_args, _ = parse_arguments(["--loss", "dice", "--dice_alpha", "0.5", "--dice_smooth", "0.1"])
    assert loss_args.loss_kwargs() == {"alpha": 0.5, "smoothing": 0.1}
    _, _, loss_args, _ = parse_arguments(["--class_weights", "effective_number", "--class_weight_beta", "0.99"])
    assert (loss_args.class_weights, loss_args.class_weight_beta) == ("effective_number", 0.99)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--loss", "logit_adjusted", "--tau", "-1"], "--tau"),
        (["--loss", "dice", "--dice_alpha", "-0.5"], "--dice_alpha"),
        (["--loss", "dice", "--dice_smooth", "0"], "--dice_smooth"),
        (["--loss", "focal", "--dice_alpha", "2"], "--dice_alpha applies to --loss dice only"),
        (["--loss", "ce", "--gamma", "2"], "--gamma applies to --loss focal only"),
        (["--class_weights", "effective_number", "--class_weight_beta", "1.0"], "--class_weight_beta"),
        (["--class_weights", "inverse_frequency", "--class_weight_beta", "0.9"], "--class_weight_beta"),
        (["--loss", "focal", "--label_smoothing_factor", "0.1"], "--label_smoothing_factor"),
        (["--loss", "dice", "--label_smoothing_factor", "0.1"], "--label_smoothing_factor"),
        (["--loss", "ghmc", "--label_smoothing_factor", "0.1"], "--label_smoothing_factor"),
        (["--loss", "ce", "--label_smoothing_factor", "1.5"], "--label_smoothing_factor"),
    ],
)
def test_bad_loss_arguments_name_the_flag(argv, message):
    with pytest.raises(ValueError, match=message):
        parse_arguments(argv)


@pytest.mark.parametrize("loss", ["ce", "logit_adjusted"])
def test_label_smoothing_is_accepted_for_cross_entropy_based_losses(loss):
    _, _, loss_args, training_args = parse_arguments(["--loss", loss, "--label_smoothing_factor", "0.1"])
    assert training_args.label_smoothing_factor == 0.1
