"""scripts/data_stats.py and scripts/evaluate_ner.py, run in-process as `python scripts/...` would."""

from __future__ import annotations

import json
import runpy
import sys

import pytest
from tiny_models import REPO

SCRIPTS = REPO / "scripts"


def run_script(name: str, *argv: str, monkeypatch, capsys) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", [name, *argv])
    with pytest.raises(SystemExit) as exited:
        runpy.run_path(str(SCRIPTS / name), run_name="__main__")
    captured = capsys.readouterr()
    return exited.value.code, captured.out, captured.err


def test_data_stats_table_and_json(fixtures_dir, monkeypatch, capsys):
    train, dev = str(fixtures_dir / "ner_train.conll"), str(fixtures_dir / "ner_dev.conll")
    code, out, _ = run_script("data_stats.py", train, dev, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0
    assert f"== {train}" in out and "sentences 4   tokens 29   entities 7" in out
    assert f"== {dev}" in out and "sentences 2   tokens 10   entities 3" in out
    code, out, _ = run_script("data_stats.py", "--json", train, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0 and json.loads(out)[train]["entities_per_type"]["person"] == 2


def test_data_stats_bad_input(tmp_path, monkeypatch, capsys):
    code, _, err = run_script("data_stats.py", str(tmp_path / "missing.conll"), monkeypatch=monkeypatch, capsys=capsys)
    assert code == 2 and "missing.conll" in err
    code, _, err = run_script("data_stats.py", monkeypatch=monkeypatch, capsys=capsys)
    assert code == 2 and "FILE" in err


def test_evaluate_three_column_file(fixtures_dir, monkeypatch, capsys):
    predictions = str(fixtures_dir / "predictions.conll")
    code, out, _ = run_script("evaluate_ner.py", "--pred", predictions, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0
    assert out.splitlines()[0] == "processed 14 tokens with 5 phrases; found: 7 phrases; correct: 4."
    code, out, _ = run_script(
        "evaluate_ner.py", "--pred", predictions, "--strict", "--json", monkeypatch=monkeypatch, capsys=capsys
    )
    assert code == 0 and json.loads(out)["correct_entities"] == 2


def test_evaluate_gold_and_prediction_files(tmp_path, monkeypatch, capsys):
    gold, pred = tmp_path / "gold.conll", tmp_path / "pred.conll"
    gold.write_text("Anna\tB-person\nsang\tO\n", encoding="utf-8")
    pred.write_text("Anna\tB-person\nsang\tO\n", encoding="utf-8")
    code, out, _ = run_script(
        "evaluate_ner.py", "--gold", str(gold), "--pred", str(pred), "--json", monkeypatch=monkeypatch, capsys=capsys
    )
    assert code == 0 and json.loads(out)["f1"] == 1.0
    pred.write_text("Anna\tB-person\n", encoding="utf-8")
    code, _, err = run_script(
        "evaluate_ner.py", "--gold", str(gold), "--pred", str(pred), monkeypatch=monkeypatch, capsys=capsys
    )
    assert code == 2 and "sentence 1" in err and "'sang'" in err


def test_evaluate_errors_examples_confusion_bootstrap(fixtures_dir, tmp_path, monkeypatch, capsys):
    predictions, png = str(fixtures_dir / "predictions.conll"), tmp_path / "confusion.png"
    argv = ("--pred", predictions, "--errors", "--examples", "1", "--confusion", str(png), "--bootstrap", "200")
    code, out, err = run_script("evaluate_ner.py", *argv, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0 and png.read_bytes()[:4] == b"\x89PNG" and str(png) in err
    lines = out.splitlines()
    assert lines[0] == "processed 14 tokens with 5 phrases; found: 7 phrases; correct: 4."
    assert any(line.startswith("micro F1 66.67, 95% interval [") for line in lines)
    assert any(line.split()[:6] == ["strict", "4", "1", "0", "0", "2"] for line in lines)
    assert any(line.split() == ["total", "4", "0", "1", "0", "0", "2"] for line in lines)
    assert "== spurious: 1 of 2 shown" in out and "  pred: [Mary Smith]person met" in out
    code, out, _ = run_script(
        "evaluate_ner.py", "--pred", predictions, "--errors", "--json", monkeypatch=monkeypatch, capsys=capsys
    )
    errors = json.loads(out)["errors"]
    assert code == 0 and errors["outcomes"]["location"]["wrong_boundary"] == 1
    assert errors["schemes"]["partial"]["partial"] == 1


def test_evaluate_missing_extra_is_one_error_line(fixtures_dir, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "nervaluate", None)
    predictions = str(fixtures_dir / "predictions.conll")
    code, out, err = run_script(
        "evaluate_ner.py", "--pred", predictions, "--errors", monkeypatch=monkeypatch, capsys=capsys
    )
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [
        "ner-evaluate: error: the SemEval-2013 schemes (--errors) needs nervaluate, which is not installed: "
        "pip install 'ner_imbalance[errors]'"
    ]


def test_evaluate_allow_token_mismatch(tmp_path, monkeypatch, capsys, caplog):
    gold, pred = tmp_path / "gold.conll", tmp_path / "pred.conll"
    gold.write_text("Defence\tB-org\ngt\tO\n", encoding="utf-8")
    pred.write_text("Defense\tB-org\nget\tO\n", encoding="utf-8")
    argv = ("--gold", str(gold), "--pred", str(pred), "--json")
    code, _, err = run_script("evaluate_ner.py", *argv, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 2 and "token 1 is gold 'Defence'" in err
    with caplog.at_level("WARNING"):
        code, out, _ = run_script(
            "evaluate_ner.py", *argv, "--allow_token_mismatch", monkeypatch=monkeypatch, capsys=capsys
        )
    assert code == 0 and json.loads(out)["f1"] == 1.0
    (warning,) = caplog.records
    assert "2 token(s) differ" in warning.getMessage() and "'Defence'" in warning.getMessage()
