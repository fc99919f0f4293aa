"""`ner-predict --model A B C` (and `scripts/predict_ner.py`): several folders are a seed ensemble.

The folders are tiny random BERTs whose classifiers are scaled (word-dependent tags, entities of both types) and
carry a folded calibration bias, with Viterbi recorded as their decoding, as `train_ner.py` leaves a run.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tiny_models import REPO, predict_flags, save_tiny_tagger
from transformers import AutoModelForTokenClassification

from ner_imbalance.calibration import fold_bias_into_classifier
from ner_imbalance.cli import predict
from ner_imbalance.constants import DECODING_CONFIG_KEY, VITERBI
from ner_imbalance.inference import Tagger

LABELS = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
TEXTS = ["John  visited Paris and London today, with Mary!", "The city of Xyzzy and Qrst Uvw , abcd", "", "Mary"]


def _calibrated_folder(folder: Path, labels: list[str], seed: int) -> Path:
    save_tiny_tagger(folder, labels, seed=seed)
    model = AutoModelForTokenClassification.from_pretrained(folder)
    with torch.no_grad():
        model.classifier.weight.mul_(10.0)
    fold_bias_into_classifier(model, [0.5] + [0.0] * (len(labels) - 1))
    setattr(model.config, DECODING_CONFIG_KEY, VITERBI)
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("predict_ensemble")
    seed1 = _calibrated_folder(root / "seed1", LABELS, seed=1)
    no_weights = root / "no_weights"
    shutil.copytree(seed1, no_weights)
    (no_weights / "model.safetensors").unlink()
    return {
        "seed1": seed1,
        "seed2": _calibrated_folder(root / "seed2", LABELS, seed=2),
        "other_labels": _calibrated_folder(root / "other_labels", LABELS[:3], seed=1),
        "no_weights": no_weights,
    }


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("texts") / "texts.txt"
    path.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    return path


def _flags(models: list[Path], source: Path) -> list[str]:
    """`predict_flags` with `--model <models>`."""
    flags = predict_flags(models[0], source)
    flags[1:2] = [str(model) for model in models]
    return flags


def _predict(models: list[Path], source: Path, output: Path) -> str:
    """The output file `ner-predict --model <models>` writes for `source`."""
    assert predict.main([*_flags(models, source), "--device", "cpu", "--output", str(output)]) == 0
    return output.read_text(encoding="utf-8")


def _without_probabilities(jsonl: str) -> list[dict]:
    records = [json.loads(line) for line in jsonl.splitlines()]
    for record in records:
        for entity in record["entities"]:
            entity["probability"] = pytest.approx(entity["probability"], rel=1e-5)
    return records


def test_two_copies_of_a_folder_write_exactly_its_output_file(folders, source, tmp_path):
    single = _predict([folders["seed1"]], source, tmp_path / "single.conll")
    assert sum(line.split("\t")[1] != "O" for line in single.splitlines() if line) >= 3, "entities to compare"
    assert _predict([folders["seed1"]] * 2, source, tmp_path / "twice.conll") == single
    single_jsonl = _predict([folders["seed1"]], source, tmp_path / "single.jsonl")
    assert _without_probabilities(_predict([folders["seed1"]] * 2, source, tmp_path / "twice.jsonl")) == (
        _without_probabilities(single_jsonl)
    )


def test_an_ensemble_writes_the_from_folders_tags_not_one_members(folders, source, tmp_path):
    members = [folders["seed1"], folders["seed2"]]
    ensemble = _predict(members, source, tmp_path / "ensemble.conll")
    assert all(ensemble != _predict([member], source, tmp_path / "member.conll") for member in members)
    tagged = Tagger.from_folders(members, device="cpu", max_seq_length=8, stride=2).tag_text(TEXTS)
    tags = [line.split("\t")[1] for line in ensemble.splitlines() if line]
    assert tags == [tag for sentence in tagged for tag in sentence.tags]


def _refusal(capsys, argv: list[str], output: Path) -> str:
    capsys.readouterr()
    assert predict.main([*argv, "--output", str(output)]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and error.startswith("ner-predict: error: ")
    assert not output.exists()
    return error


def test_onnx_with_several_folders_is_refused_before_any_work(folders, tmp_path, capsys):
    """Refused at the flags: the input does not exist and no folder has an ONNX graph."""
    argv = ["--model", str(folders["seed1"]), str(folders["seed2"]), "--input", str(tmp_path / "missing.txt")]
    error = _refusal(capsys, [*argv, "--backend", "onnx"], tmp_path / "out.conll")
    assert "--backend onnx takes one --model folder, got 2" in error


def test_the_script_refuses_onnx_with_several_folders_in_one_line(folders, source, tmp_path):
    output = tmp_path / "out.conll"
    command = [sys.executable, str(REPO / "scripts" / "predict_ner.py"), "--backend", "onnx", "--model"]
    command += [str(folders["seed1"]), str(folders["seed1"]), "--input", str(source), "--output", str(output)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "ner-predict: error: --backend onnx takes one --model folder, got 2: the ONNX backend has no ensemble; "
        "tag a seed ensemble with --backend torch"
    ]
    assert not output.exists()


@pytest.mark.parametrize(
    ("member", "message"),
    [
        ("no_weights", "no_weights: no model weights"),
        ("other_labels", "other_labels: its labels"),
        ("nowhere", "nowhere: no such model folder"),
    ],
)
def test_each_folder_gets_the_checks_of_one(folders, source, tmp_path, capsys, member, message):
    models = [folders["seed1"], folders.get(member, tmp_path / member)]
    assert message in _refusal(capsys, _flags(models, source), tmp_path / "out.conll")
