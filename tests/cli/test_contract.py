"""Issue 28: ner-evaluate, ner-data-stats and ner-tune keep ner-train's contract.

Bad input is exit status 2 and exactly one stderr line, without traceback, and leaves the input's
bytes as they were; output cut short by `| head` ends quietly; written files get the permissions
of a plain `open`. The scripts run as subprocesses where the exit of the real process is the point
(a closed pipe), in this process otherwise.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tiny_models import REPO, TINY_CORPUS, tiny_corpus_flags, umask

from ner_imbalance.cli import data_stats, evaluate, tune
from ner_imbalance.utils.atomic import write_json_atomic

GOLD_IOB2 = "John B-PER\nSmith I-PER\nvisited O\nParis B-LOC\n\n"
PRED_IOBES = "John B-PER\nSmith E-PER\nvisited O\nParis S-LOC\n\n"


def digest(*paths: Path) -> list[str]:
    return [hashlib.sha256(path.read_bytes()).hexdigest() for path in paths]


def one_line(stderr: str, program: str) -> str:
    lines = stderr.strip().splitlines()
    assert "Traceback" not in stderr and len(lines) == 1, stderr
    assert lines[0].startswith(f"{program}: error: ")
    return lines[0]


def refused(main, argv: list[str], capsys, program: str, *inputs: Path) -> str:
    """`main(argv)` exits 2 (returned or raised by argparse) with one stderr line; the inputs' bytes are unchanged."""
    before = digest(*inputs)
    try:
        status = main(argv)
    except SystemExit as exit_:
        status = exit_.code
    assert status == 2
    assert digest(*inputs) == before
    return one_line(capsys.readouterr().err, program)


def environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}


@pytest.fixture
def iob2_gold_iobes_pred(tmp_path) -> tuple[Path, Path]:
    gold, pred = tmp_path / "gold.conll", tmp_path / "pred.conll"
    gold.write_text(GOLD_IOB2, encoding="utf-8")
    pred.write_text(PRED_IOBES, encoding="utf-8")
    return gold, pred


# ner-evaluate


@pytest.mark.parametrize("strict", [False, True])
def test_evaluate_refuses_gold_and_predictions_in_different_schemes_naming_both(iob2_gold_iobes_pred, capsys, strict):
    gold, pred = iob2_gold_iobes_pred
    argv = ["--gold", str(gold), "--pred", str(pred), *(["--strict"] if strict else [])]
    line = refused(evaluate.main, argv, capsys, "ner-evaluate", gold, pred)
    assert f"gold {gold} in IOB2" in line and f"predictions {pred} in IOBES" in line


def test_evaluate_refuses_a_one_file_prediction_whose_columns_differ_in_scheme(tmp_path, capsys):
    both = tmp_path / "both.conll"
    both.write_text("John B-PER B-PER\nSmith I-PER E-PER\n\n", encoding="utf-8")
    line = refused(evaluate.main, ["--pred", str(both)], capsys, "ner-evaluate", both)
    assert f"the gold column of {both} in IOB2" in line and "its predicted column in IOBES" in line


def test_evaluate_scores_the_same_scheme_on_both_sides(tmp_path, capsys):
    gold, pred = tmp_path / "gold.conll", tmp_path / "pred.conll"
    gold.write_text(PRED_IOBES, encoding="utf-8")
    pred.write_text(PRED_IOBES.replace("S-LOC", "O"), encoding="utf-8")
    assert evaluate.main(["--gold", str(gold), "--pred", str(pred), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["recall"] == 0.5


def test_evaluate_warns_once_about_a_predicted_type_gold_never_uses(tmp_path, capsys, caplog):
    gold, pred = tmp_path / "gold.conll", tmp_path / "pred.conll"
    gold.write_text(GOLD_IOB2, encoding="utf-8")
    pred.write_text(GOLD_IOB2.replace("B-LOC", "B-CITY"), encoding="utf-8")
    with caplog.at_level("WARNING"):
        assert evaluate.main(["--gold", str(gold), "--pred", str(pred), "--json"]) == 0
    (warning,) = caplog.records
    assert warning.getMessage() == "predicted types that gold never uses: CITY (1x); scored as false positives"
    assert json.loads(capsys.readouterr().out)["precision"] == 0.5


@pytest.mark.parametrize("flag", ["--html", "--confusion"])
def test_evaluate_never_writes_over_its_input(tmp_path, capsys, flag):
    pred = tmp_path / "pred.png" if flag == "--confusion" else tmp_path / "pred.conll"
    pred.write_text("John B-PER B-PER\n\n", encoding="utf-8")
    link = tmp_path / ("link.png" if flag == "--confusion" else "link.html")
    link.symlink_to(pred)
    line = refused(evaluate.main, ["--pred", str(pred), flag, str(link)], capsys, "ner-evaluate", pred)
    assert f"{flag} {link} is one of the input files" in line


def test_evaluate_refuses_a_folder_as_output_and_an_unknown_flag_in_one_line(tmp_path, capsys):
    pred = tmp_path / "pred.conll"
    pred.write_text("John B-PER B-PER\n\n", encoding="utf-8")
    line = refused(evaluate.main, ["--pred", str(pred), "--html", str(tmp_path)], capsys, "ner-evaluate", pred)
    assert f"--html {tmp_path} is a folder" in line
    line = refused(evaluate.main, ["--pred", str(pred), "--bogus"], capsys, "ner-evaluate", pred)
    assert "unrecognized arguments: --bogus" in line


@pytest.mark.parametrize("command", ["evaluate", "data_stats"])
def test_output_cut_short_by_head_ends_quietly(tmp_path, command):
    if command == "evaluate":  # over 64 KiB of examples: more than the pipe holds
        gold, pred = tmp_path / "gold.conll", tmp_path / "pred.conll"
        gold.write_text(GOLD_IOB2 * 3000, encoding="utf-8")
        pred.write_text(GOLD_IOB2.replace("B-LOC", "B-PER") * 3000, encoding="utf-8")
        argv = ["--gold", str(gold), "--pred", str(pred), "--examples", "3000"]
    else:  # the tables of 400 files
        argv = [str(tmp_path / f"part{number}.conll") for number in range(400)]
        for path in argv:
            Path(path).write_text(GOLD_IOB2, encoding="utf-8")
    process = subprocess.Popen(
        [sys.executable, "-m", f"ner_imbalance.cli.{command}", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environment(),
    )
    process.stdout.readline()
    process.stdout.close()  # what `| head -1` does
    stderr = process.stderr.read().decode()
    process.wait(timeout=120)
    assert stderr == "" and process.returncode == 141  # 128 + SIGPIPE, as a shell reports `cat` cut short


# ner-data-stats


def test_data_stats_refuses_a_folder_and_a_bad_file_in_one_line(tmp_path, capsys):
    line = refused(data_stats.main, [str(tmp_path)], capsys, "ner-data-stats")
    assert f"{tmp_path} is a folder" in line
    latin1 = tmp_path / "latin1.conll"
    latin1.write_bytes(b"M\xfcnchen B-LOC\n")
    line = refused(data_stats.main, [str(latin1)], capsys, "ner-data-stats", latin1)
    assert f"{latin1}, line 1: not UTF-8" in line
    assert "FILE" in refused(data_stats.main, [], capsys, "ner-data-stats")


# ner-tune


def search_flags(model_dir: Path, output_dir: Path, *extra: str) -> list[str]:
    return tiny_corpus_flags(model_dir, output_dir, "--use_cpu", "true", "--report_to", "none", *extra)


@pytest.mark.parametrize(
    ("changed", "named"),
    [
        (["--loss", "ce"], "--loss ce (the study's: focal)"),
        (["--max_seq_length", "96"], "--max_seq_length 96 (the study's: 128)"),
        (["--train_file", str(TINY_CORPUS / "test.conll")], "--train_file has other content"),
    ],
)
def test_tune_refuses_a_folder_holding_a_study_of_other_data_or_loss(tmp_path, tiny_model_dir, capsys, changed, named):
    from ner_imbalance.config.arguments import parse_arguments
    from ner_imbalance.losses import loss_search_space
    from ner_imbalance.training.tuning import FINGERPRINT_FILE, STUDY_FILE, claim_study_folder, study_fingerprint

    model_args, data_args, loss_args, _ = parse_arguments(
        search_flags(tiny_model_dir, tmp_path, "--loss", "focal", "--max_seq_length", "128")
    )
    claim_study_folder(tmp_path, study_fingerprint(model_args, data_args, loss_args, loss_search_space("focal")))
    (tmp_path / STUDY_FILE).write_bytes(b"SQLite format 3\x00 the other study")
    argv = ["--n_trials", "1", *search_flags(tiny_model_dir, tmp_path, "--loss", "focal", "--max_seq_length", "128")]
    argv += changed
    line = refused(tune.main, argv, capsys, "ner-tune", tmp_path / STUDY_FILE, tmp_path / FINGERPRINT_FILE)
    assert f"--output_dir {tmp_path} holds a study of other data, model or loss" in line and named in line


@pytest.mark.parametrize(
    ("flags", "named"),
    [(["--n_trials", "many"], "--n_trials"), (["--learning_rate_low", "low"], "--learning_rate_low")],
)
def test_tune_refuses_a_bad_value_of_its_own_flags_in_one_line(tmp_path, tiny_model_dir, capsys, flags, named):
    line = refused(tune.main, [*flags, *search_flags(tiny_model_dir, tmp_path, "--loss", "focal")], capsys, "ner-tune")
    assert named in line and "usage:" not in line


def test_the_search_draws_are_not_part_of_the_fingerprint(tmp_path, tiny_model_dir):
    from ner_imbalance.config.arguments import parse_arguments
    from ner_imbalance.losses import loss_search_space
    from ner_imbalance.training.tuning import study_fingerprint

    def fingerprint(*flags: str) -> dict:
        model_args, data_args, loss_args, _ = parse_arguments(search_flags(tiny_model_dir, tmp_path, *flags))
        return study_fingerprint(model_args, data_args, loss_args, loss_search_space("focal"))

    assert fingerprint("--loss", "focal", "--gamma", "1") == fingerprint("--loss", "focal", "--gamma", "3")
    assert fingerprint("--loss", "focal") != fingerprint("--loss", "focal", "--max_train_samples", "5")


# Written files


def test_written_files_get_the_permissions_of_a_plain_open(tmp_path):
    with umask(0o027):
        path = write_json_atomic(tmp_path / "results.json", {"f1": 0.5})
        assert path.stat().st_mode & 0o777 == 0o640
        path.chmod(0o664)
        write_json_atomic(path, {"f1": 0.6})
        assert path.stat().st_mode & 0o777 == 0o664, "an existing file keeps its mode"
