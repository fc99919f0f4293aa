"""scripts/data_stats.py and scripts/evaluate_ner.py, run in-process as `python scripts/...` would."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


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
