"""Hyperparameter search on the tiny corpus with a tiny random BERT: trials, resume, the table, errors."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import optuna
import pytest
from tiny_models import save_tiny_encoder, tiny_corpus_flags

from ner_imbalance.cli import tune
from ner_imbalance.config.arguments import parse_arguments
from ner_imbalance.losses import SearchSpace
from ner_imbalance.training.tuning import TuningArguments, format_trials, run_search, study_name, suggest
from ner_imbalance.utils.extras import MissingExtraError


@pytest.fixture(scope="module")
def tiny_encoder_dir(tmp_path_factory, tiny_tokenizer) -> Path:
    return save_tiny_encoder(tmp_path_factory.mktemp("tiny_bert"), tiny_tokenizer)


def search_flags(model_dir: Path, output_dir: Path, loss: str = "focal") -> list[str]:
    return tiny_corpus_flags(
        model_dir,
        output_dir,
        "--loss",
        loss,
        "--num_train_epochs",
        "1",
        "--max_seq_length",
        "32",
        "--stride",
        "8",
        "--per_device_train_batch_size",
        "4",
        "--use_cpu",
        "true",
        "--report_to",
        "none",
        "--disable_tqdm",
        "true",
    )


def test_two_trials_then_resume_adds_to_the_same_study(tiny_encoder_dir, tmp_path, capsys):
    flags = search_flags(tiny_encoder_dir, tmp_path)
    assert tune.main(["--n_trials", "2", *flags]) == 0
    out = capsys.readouterr().out
    assert "\n| trial | state | dev_f1 | evaluations | seconds | gamma | learning_rate |\n" in out
    assert "retrain with" in out and "--learning_rate" in out and "--gamma" in out
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = optuna.load_study(study_name=study_name("focal"), storage=storage)
    trials = study.get_trials()
    assert [trial.state for trial in trials] == [optuna.trial.TrialState.COMPLETE] * 2
    for trial in trials:
        assert 1e-5 <= trial.params["learning_rate"] <= 2e-4 and 0.0 <= trial.params["gamma"] <= 5.0
        assert len(trial.intermediate_values) == 1 and 0.0 <= trial.value <= 1.0  # one epoch, one dev F1
    assert trials[0].params != trials[1].params
    assert not list(tmp_path.glob("run-*/checkpoint-*"))  # trials keep no checkpoints

    # The same command with a larger total resumes: one more trial in the same study.
    assert tune.main(["--n_trials", "3", *flags]) == 0
    capsys.readouterr()
    study = optuna.load_study(study_name=study_name("focal"), storage=storage)
    assert len(study.get_trials()) == 3 and study.get_trials()[:2] == trials
    assert study.get_trials()[2].params not in [trial.params for trial in trials], "a resume replayed a trial"
    with open(tmp_path / "trials.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["trial"] for row in rows] == ["0", "1", "2"] and all(row["state"] == "complete" for row in rows)
    assert (tmp_path / "trials.md").read_text(encoding="utf-8").startswith("| trial | state | dev_f1 |")


def test_each_trial_trains_with_its_own_loss(tiny_encoder_dir, tmp_path, monkeypatch):
    from ner_imbalance.training import tuning

    built = []
    original = tuning.build_corpus_loss

    def recording(loss_args, corpus, label_smoothing):
        loss = original(loss_args, corpus, label_smoothing)
        built.append(loss)
        return loss

    monkeypatch.setattr(tuning, "build_corpus_loss", recording)
    seen = []
    original_train = tuning.ImbalanceTrainer.train

    def train_and_record(self, *args, **kwargs):
        seen.append((self.loss_fn, kwargs["trial"].params["K"], kwargs["trial"].params["softened_variant"]))
        return original_train(self, *args, **kwargs)

    monkeypatch.setattr(tuning.ImbalanceTrainer, "train", train_and_record)
    model_args, data_args, loss_args, training_args = parse_arguments(
        search_flags(tiny_encoder_dir, tmp_path, "softened")
    )
    result = run_search(model_args, data_args, loss_args, training_args, TuningArguments(n_trials=2))
    assert len(seen) == 2 and seen[0][0] is not seen[1][0]
    for loss_fn, K, variant in seen:
        assert (loss_fn.K, loss_fn.variant) == (pytest.approx(K), variant)
    assert set(result.best_params) == {"learning_rate", "K", "softened_variant"}


def test_suggest_types():
    trial = optuna.trial.FixedTrial({"bins": 7, "rate": 0.01, "variant": "a"})
    assert suggest(trial, "bins", SearchSpace(5, 30)) == 7
    assert suggest(trial, "rate", SearchSpace(1e-3, 1.0, log=True)) == 0.01
    assert suggest(trial, "variant", ("a", "b")) == "a"


def test_bad_arguments_and_missing_optuna(tiny_encoder_dir, tmp_path, monkeypatch, capsys):
    flags = search_flags(tiny_encoder_dir, tmp_path)
    assert tune.main(["--n_trials", "0", *flags]) == 2
    assert "--n_trials must be >= 1" in capsys.readouterr().err
    assert tune.main(["--learning_rate_low", "1e-3", "--learning_rate_high", "1e-4", *flags]) == 2
    assert "0 < low < high" in capsys.readouterr().err
    assert tune.main([*flags, "--eval_strategy", "no", "--load_best_model_at_end", "false"]) == 2
    assert "--eval_strategy no" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "optuna", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'ner_imbalance\[tune\]'"):
        run_search(*parse_arguments(flags), TuningArguments(n_trials=1))
    assert tune.main(flags) == 2 and "ner_imbalance[tune]" in capsys.readouterr().err
    assert not (tmp_path / "optuna.db").exists()


def test_format_trials_orders_best_first():
    rows = [
        {"trial": 0, "state": "complete", "dev_f1": 0.2, "evaluations": 1, "seconds": 1.0, "learning_rate": 1e-4},
        {"trial": 1, "state": "pruned", "dev_f1": 0.5, "evaluations": 1, "seconds": 1.0, "learning_rate": 3e-5},
        {"trial": 2, "state": "fail", "dev_f1": float("nan"), "evaluations": 0, "seconds": 0.5},
    ]
    lines = format_trials(rows).splitlines()
    assert [line.split("|")[1].strip() for line in lines[2:]] == ["1", "0", "2"]
    assert lines[-1].endswith("| - | 0 | 0.5 | - |")
