"""The ONNX Runtime backend: export (fp32, int8), the same tags as torch through the same windows, the CLI, errors.

A tiny random BERT (`tiny_models`) is exported once per module. These tests need the `onnx` extra
(in the `test` extra): they skip with the reason where onnxruntime is missing, except under CI
(`CI=true`), where that is a failure.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import pytest
from tiny_models import output_state, require_onnx_extra, save_tiny_tagger, umask

from ner_imbalance.cli import export_onnx as export_command
from ner_imbalance.cli import predict
from ner_imbalance.inference import Tagger, export_onnx, onnx_tagger
from ner_imbalance.inference.onnx_backend import DEFAULT_INT8, FP32, largest_difference_from_torch
from ner_imbalance.utils.extras import MissingExtraError

LABELS = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
WINDOWS = dict(max_seq_length=8, stride=2, batch_size=3)
SENTENCES = [
    ["john", "visited", "paris", "and", "london", "today"] * 4,
    ["mary"],
    [],
    ["xyzzy", "abcd", "the", "city", "with", "mary"],
]

require_onnx_extra()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A random BertForTokenClassification with NER labels, saved as train_ner.py saves, exported to ONNX."""

    folder = save_tiny_tagger(tmp_path_factory.mktemp("onnx_model"), LABELS, seed=7)
    with umask(0o022):
        assert export_command.main(["--model", str(folder), "--int8"]) == 0
    return folder


def test_export_writes_both_graphs_whole_and_readable(model_dir):
    names = sorted(path.name for path in model_dir.iterdir())
    assert "model.onnx" in names and f"model.{DEFAULT_INT8}.onnx" in names
    assert not [name for name in names if name.endswith(".tmp")]
    assert (model_dir / "model.onnx").stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize(
    "export",
    [
        lambda folder: export_command.main(["--model", str(folder), "--int8"]) == 0,
        lambda folder: len(export_onnx(folder, int8=True)) == 2,
    ],
    ids=["ner-export-onnx", "export_onnx"],
)
def test_export_leaves_logging_as_it_was(tmp_path, caplog, export):
    """ner-export-onnx quiets the libraries for its own run only, and export_onnx undoes what the exporter and
    ONNX Runtime change (a stderr handler on a root logger that had none, torch's loggers reset): a warning of
    the package logged after an in-process export still reaches the root logger's handlers."""

    folder = save_tiny_tagger(tmp_path, LABELS, seed=7)
    root = logging.getLogger()
    pytest_handlers = root.handlers[:]
    for handler in pytest_handlers:  # the root logger of a plain process: no handler
        root.removeHandler(handler)
    try:
        before = output_state()
        assert export(folder)
        after = output_state()
    finally:
        for handler in pytest_handlers:
            root.addHandler(handler)
    after["loggers"] = {name: after["loggers"][name] for name in before["loggers"]}  # new ones: the libraries' own
    assert after == before
    logging.getLogger("ner_imbalance.data.labels").warning("a warning after the export")
    assert "a warning after the export" in caplog.text


def test_fp32_graph_gives_the_torch_probabilities_and_tags(model_dir):
    torch_tagger = Tagger.from_folder(model_dir, device="cpu", **WINDOWS)
    onnx = onnx_tagger(model_dir, variant="fp32", **WINDOWS)
    np.testing.assert_allclose(
        onnx.word_probabilities(SENTENCES), torch_tagger.word_probabilities(SENTENCES), atol=1e-5, rtol=1e-4
    )
    assert [s.tags for s in onnx.tag(SENTENCES)] == [s.tags for s in torch_tagger.tag(SENTENCES)]


def test_the_difference_from_torch_is_measured_per_graph_and_printed(tmp_path, capsys):
    folder = save_tiny_tagger(tmp_path, LABELS, seed=7)
    assert export_command.main(["--model", str(folder), "--int8"]) == 0
    printed = capsys.readouterr().out.splitlines()
    differences = largest_difference_from_torch(folder, (FP32, DEFAULT_INT8))
    assert differences[FP32] < 1e-5 < differences[DEFAULT_INT8] < 0.1, "int8 rounds, fp32 does not"
    expected = [f"{differences[variant]:.2e})" for variant in (FP32, DEFAULT_INT8)]
    assert [line.rsplit(" ", 1)[-1] for line in printed] == expected


def test_int8_graph_is_close(model_dir):
    reference = Tagger.from_folder(model_dir, device="cpu", **WINDOWS).word_probabilities(SENTENCES)
    probabilities = onnx_tagger(model_dir, variant=DEFAULT_INT8, **WINDOWS).word_probabilities(SENTENCES)
    assert probabilities.shape == reference.shape
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, rtol=1e-5)
    assert np.abs(probabilities - reference).max() < 0.1


def test_decoding_and_windows_are_the_taggers(model_dir):
    onnx = onnx_tagger(model_dir, decoding="viterbi", **WINDOWS)
    torch_tagger = Tagger.from_folder(model_dir, device="cpu", decoding="viterbi", **WINDOWS)
    assert [s.tags for s in onnx.tag(SENTENCES)] == [s.tags for s in torch_tagger.tag(SENTENCES)]


def test_predict_ner_backend_onnx_writes_the_torch_output(tmp_path, model_dir):
    source = tmp_path / "in.txt"
    source.write_text("John visited Paris and London today\n\nMary likes the city\n", encoding="utf-8")
    flags = ["--model", str(model_dir), "--input", str(source), "--no_progress", "--max_seq_length", "8"]
    flags += ["--stride", "2"]
    assert predict.main([*flags, "--output", str(tmp_path / "torch.jsonl")]) == 0
    assert predict.main([*flags, "--output", str(tmp_path / "onnx.jsonl"), "--backend", "onnx",
                             "--onnx_variant", "fp32"]) == 0  # fmt: skip
    assert predict.main([*flags, "--output", str(tmp_path / "int8.jsonl"), "--backend", "onnx"]) == 0
    torch_lines = (tmp_path / "torch.jsonl").read_text(encoding="utf-8").splitlines()
    onnx_lines = (tmp_path / "onnx.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(torch_lines) == len(onnx_lines) == 3
    for torch_line, onnx_line in zip(torch_lines, onnx_lines):
        assert torch_line.split('"entities"')[0] == onnx_line.split('"entities"')[0]
    assert len((tmp_path / "int8.jsonl").read_text(encoding="utf-8").splitlines()) == 3


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--device", "cuda"], "the ONNX backend runs on the CPU"),
        (["--dtype", "bfloat16"], "the ONNX backend runs float32 graphs"),
    ],
)
def test_onnx_backend_refuses_gpu_and_bf16_in_one_line(tmp_path, model_dir, capsys, flags, message):
    source = tmp_path / "in.txt"
    source.write_text("John ran\n", encoding="utf-8")
    capsys.readouterr()
    command = ["--model", str(model_dir), "--input", str(source), "--output", str(tmp_path / "out.conll")]
    assert predict.main([*command, "--backend", "onnx", "--no_progress", *flags]) == 2
    error = capsys.readouterr().err.strip()
    assert message in error and len(error.splitlines()) == 1
    assert not (tmp_path / "out.conll").exists()


def test_missing_onnxruntime_names_the_extra(model_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'ner_imbalance\[onnx\]'"):
        onnx_tagger(model_dir)
    with pytest.raises(MissingExtraError, match=r"ner_imbalance\[onnx\]"):
        export_onnx(model_dir)


def test_missing_graph_says_how_to_export(tmp_path, model_dir):
    folder = tmp_path / "copy"
    folder.mkdir()
    for path in model_dir.iterdir():
        if path.suffix != ".onnx":
            (folder / path.name).write_bytes(path.read_bytes())
    with pytest.raises(FileNotFoundError, match=r"ner-export-onnx --model .* --int8"):
        onnx_tagger(folder, variant=DEFAULT_INT8)
