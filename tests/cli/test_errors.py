"""Issue 14: a run never destroys or mixes earlier results, and every bad input is one line before any work.

Most cases call `train.main` in this process (the same code path, without re-importing torch for
each); the ones that prove the real script's exit status, output and traceback switch run
`python -m ner_imbalance.cli.train` as a subprocess. Every failing case targets a folder holding an earlier
run's files with `--overwrite_output_dir`, and checks that those files are untouched.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from tiny_models import REPO, TINY_CORPUS, TINY_MAX_POSITIONS, one_error_line, snapshot

from ner_imbalance.cli import train

CORPUS = TINY_CORPUS
LABELS_IN_ORDER = "O,B-LOC,I-LOC,B-ORG,I-ORG,B-PER,I-PER"
# One optimizer step, checkpoints and evaluations every step: a complete run in seconds.
TINY_TRAINING = [
    "--max_steps",
    "2",
    "--per_device_train_batch_size",
    "16",
    "--eval_strategy",
    "steps",
    "--eval_steps",
    "1",
    "--save_strategy",
    "steps",
    "--save_steps",
    "1",
    "--save_total_limit",
    "3",
    "--max_seq_length",
    "32",
    "--stride",
    "8",
    "--use_cpu",
    "true",
    "--disable_tqdm",
    "true",
    "--report_to",
    "none",
    "--loss",
    "ce",
]


def run_flags(model_dir: Path, output_dir: Path, *extra: str, validation: bool = True) -> list[str]:
    flags = ["--model_name_or_path", str(model_dir), "--train_file", str(CORPUS / "train.conll")]
    if validation:
        flags += ["--validation_file", str(CORPUS / "dev.conll")]
    return [*flags, "--output_dir", str(output_dir), *TINY_TRAINING, *extra]


def make_earlier_run(folder: Path) -> Path:
    """A folder with an earlier run's files (results, predictions, a checkpoint) to be kept intact."""
    (folder / "checkpoint-12").mkdir(parents=True)
    (folder / "checkpoint-12" / "trainer_state.json").write_text('{"global_step": 12}')
    (folder / "eval_results.json").write_text('{"eval_f1": 0.5}')
    (folder / "predictions_validation.conll").write_text("John\tB-PER\tB-PER\n\n")
    (folder / "model.safetensors").write_bytes(b"earlier weights")
    return folder


@pytest.fixture
def earlier_run(tmp_path) -> Path:
    return make_earlier_run(tmp_path / "earlier_run")


def fails_in_one_line(capsys, argv: list[str], earlier: Path) -> str:
    """Run `train.main(argv)`: exit status 2, one error line on stderr, the earlier run's files untouched."""
    before = snapshot(earlier)
    assert train.main(argv) == 2
    line = one_error_line(capsys.readouterr().err)
    assert snapshot(earlier) == before
    return line


def script_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    paths = [str(REPO), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, paths)), **(extra or {})}


@dataclass
class ScriptRun:
    """One `ner-train` subprocess of this module and the earlier run it must leave intact."""

    earlier: Path
    before: dict[str, str]
    returncode: int
    stderr: str


@pytest.fixture(scope="module")
def script_runs(tmp_path_factory, tiny_model_dir) -> dict[str, ScriptRun]:
    """The subprocess cases, started together (each pays the import of torch and transformers)."""
    root = tmp_path_factory.mktemp("script_runs")
    latin1 = root / "latin1.conll"
    latin1.write_bytes(b"M\xfcnchen B-LOC\n")
    overwrite = ("--overwrite_output_dir", "true")
    cases = {
        "non_empty_folder": ((), {}),
        "too_long": ((*overwrite, "--max_seq_length", "1024"), {}),
        "not_utf8": ((*overwrite, "--train_file", str(latin1)), {}),
        "debug_traceback": ((*overwrite, "--max_train_samples", "0"), {"NER_IMBALANCE_DEBUG": "1"}),
    }
    started = {}
    for name, (flags, env) in cases.items():
        earlier = make_earlier_run(root / name)
        process = subprocess.Popen(
            [sys.executable, "-m", "ner_imbalance.cli.train", *run_flags(tiny_model_dir, earlier, *flags)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=script_environment(env),
        )
        started[name] = (earlier, snapshot(earlier), process)
    runs = {}
    for name, (earlier, before, process) in started.items():
        _, stderr = process.communicate(timeout=300)
        runs[name] = ScriptRun(earlier, before, process.returncode, stderr)
    runs["latin1"] = ScriptRun(latin1, {}, 0, "")
    return runs


def script_failed_in_one_line(run: ScriptRun) -> str:
    assert run.returncode == 2
    line = one_error_line(run.stderr)
    assert snapshot(run.earlier) == run.before
    return line


# 1. An existing output folder is refused, not overwritten; the default folder is new for every run.


def test_script_refuses_a_non_empty_output_folder_in_one_line_and_keeps_its_files(script_runs):
    run = script_runs["non_empty_folder"]
    line = script_failed_in_one_line(run)
    assert str(run.earlier) in line and "--overwrite_output_dir" in line and "--resume_from_checkpoint" in line


def test_default_output_folder_is_new_per_run_and_named_after_the_loss(tmp_path, tiny_model_dir, monkeypatch):
    from ner_imbalance.config.arguments import parse_arguments
    from ner_imbalance.training.run import prepare_run

    monkeypatch.chdir(tmp_path)
    flags = ["--model_name_or_path", str(tiny_model_dir), "--train_file", str(CORPUS / "train.conll")]
    first = prepare_run(*parse_arguments([*flags, "--loss", "ghmc"])).training_args.output_dir
    second = prepare_run(*parse_arguments([*flags, "--loss", "ghmc"])).training_args.output_dir
    assert Path(first).parent == Path(second).parent == Path("outputs")
    assert Path(first).name.startswith("ghmc-") and first != second
    assert Path(first).is_dir() and not any(Path(first).iterdir()), "claimed, still empty"


# 2. --overwrite_output_dir removes the earlier run's files first; results are this run's only.


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, tiny_model_dir) -> Path:
    """A complete tiny run with validation: checkpoints 1 and 2, eval results and predictions."""
    folder = tmp_path_factory.mktemp("trained") / "run"
    assert train.main(run_flags(tiny_model_dir, folder)) == 0
    return folder


def test_overwrite_removes_stale_files_and_all_results_holds_only_this_run(
    trained_run, tiny_model_dir, tmp_path, capsys
):
    import shutil

    folder = tmp_path / "rerun"
    shutil.copytree(trained_run, folder)
    assert (folder / "eval_results.json").is_file() and (folder / "checkpoint-2").is_dir()
    argv = run_flags(
        tiny_model_dir,
        folder,
        "--test_file",
        str(CORPUS / "test.conll"),
        "--overwrite_output_dir",
        "true",
        validation=False,
    )
    argv[argv.index("--max_steps") + 1] = "1"
    assert train.main(argv) == 0
    assert f"output folder {folder}" in capsys.readouterr().out
    assert not (folder / "eval_results.json").exists() and not (folder / "predictions_validation.conll").exists()
    assert not (folder / "checkpoint-2").exists(), "the earlier run's checkpoints are gone, not mixed with these"
    all_results = json.loads((folder / "all_results.json").read_text())
    assert any(key.startswith("test_") for key in all_results)
    assert not any(key.startswith("eval_") for key in all_results)
    assert not list(folder.glob(".*.tmp")), "atomic writes leave no temporary files"


# 3. max_seq_length beyond the model's positions is refused before anything loads.


def test_script_refuses_max_seq_length_beyond_the_position_embeddings(script_runs):
    line = script_failed_in_one_line(script_runs["too_long"])
    assert "--max_seq_length 1024" in line and f"the {TINY_MAX_POSITIONS} positions" in line


# 4. Data-file errors: one line naming the file and line (or JSON record), no traceback.

DATA_ERRORS = {
    "empty": ("train.conll", b"\n\n", "empty"),
    "one_column": ("train.conll", b"John B-PER\nvisited\n", "line 2"),
    "not_utf8": ("train.conll", b"John B-PER\nM\xfcnchen B-LOC\n", "line 2"),
    "only_docstart": ("train.conll", b"-DOCSTART- -X- O O\n\n-DOCSTART- -X- O O\n", "no sentences"),
    "bad_json": ("train.json", b'[{"tokens": ["a"], "ner_tags": ["O"]},', "invalid JSON"),
    "bad_jsonl": ("train.jsonl", b'{"tokens": ["a"], "ner_tags": ["O"]}\n{"tokens": [\n', "line 2"),
    "json_lengths": (
        "train.json",
        b'[{"tokens": ["a"], "ner_tags": ["O"]}, {"tokens": ["John", "ran"], "ner_tags": ["B-PER"]}]',
        "record 2",
    ),
}


@pytest.mark.parametrize("case", sorted(DATA_ERRORS))
def test_bad_training_file_is_one_line_naming_file_and_place(case, tmp_path, earlier_run, tiny_model_dir, capsys):
    name, content, where = DATA_ERRORS[case]
    bad = tmp_path / name
    bad.write_bytes(content)
    argv = run_flags(tiny_model_dir, earlier_run, "--overwrite_output_dir", "true")
    argv[argv.index("--train_file") + 1] = str(bad)
    line = fails_in_one_line(capsys, argv, earlier_run)
    assert str(bad) in line and where in line


def test_script_reports_a_non_utf8_file_without_traceback(script_runs):
    line = script_failed_in_one_line(script_runs["not_utf8"])
    assert f"{script_runs['latin1'].earlier}, line 1: not UTF-8" in line


def test_unseen_dev_tag_names_the_file_and_tag(tmp_path, earlier_run, tiny_model_dir, capsys):
    dev = tmp_path / "dev.conll"
    dev.write_text("Acme B-COMPANY\nrose O\n")
    argv = run_flags(tiny_model_dir, earlier_run, "--overwrite_output_dir", "true", "--validation_file", str(dev))
    line = fails_in_one_line(capsys, argv, earlier_run)
    assert str(dev) in line and "B-COMPANY" in line


def test_missing_file_names_the_flag(earlier_run, tiny_model_dir, capsys):
    argv = run_flags(tiny_model_dir, earlier_run, "--overwrite_output_dir", "true", "--test_file", "no/such.conll")
    assert "--test_file" in fails_in_one_line(capsys, argv, earlier_run)


def test_traceback_is_shown_on_request(script_runs, earlier_run, tiny_model_dir):
    run = script_runs["debug_traceback"]
    assert run.returncode != 0 and "Traceback" in run.stderr and "UsageError" in run.stderr
    argv = run_flags(tiny_model_dir, earlier_run, "--overwrite_output_dir", "true", "--max_train_samples", "0")
    with pytest.raises(ValueError, match="--max_train_samples"):
        train.main([*argv, "--traceback"])


# 5. Per-class vectors: checked against the label list before the model loads, labels listed in order.


def test_alpha_of_the_wrong_length_names_the_flag_and_the_label_order(earlier_run, tiny_model_dir, capsys):
    argv = run_flags(tiny_model_dir, earlier_run, "--overwrite_output_dir", "true")
    argv[argv.index("--loss") + 1] = "focal"
    line = fails_in_one_line(capsys, [*argv, "--alpha", "0.5,0.3,0.2"], earlier_run)
    assert "--alpha has 3 values" in line and "7 labels" in line and LABELS_IN_ORDER in line


# 6. Counts, resume, warnings and evaluation-only runs.


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--max_train_samples", "0"], "--max_train_samples"),
        (["--max_eval_samples", "0"], "--max_eval_samples"),
        (["--per_device_train_batch_size", "0"], "--per_device_train_batch_size"),
        (["--gradient_accumulation_steps", "0"], "--gradient_accumulation_steps"),
        (["--num_train_epochs", "0", "--max_steps", "-1"], "--num_train_epochs"),
        (["--metric_for_best_model", "f2", "--load_best_model_at_end", "true"], "--metric_for_best_model"),
        (["--stride", "20", "--max_seq_length", "32"], "--stride"),
        (["--group_by_length", "true"], "--train_sampling_strategy"),
    ],
)
def test_bad_count_or_flag_is_one_line_naming_the_flag(flags, named, earlier_run, tiny_model_dir, capsys):
    argv = run_flags(tiny_model_dir, earlier_run, "--overwrite_output_dir", "true", *flags)
    assert named in fails_in_one_line(capsys, argv, earlier_run)


def test_metric_for_best_model_accepts_per_type_scores(tmp_path, tiny_model_dir):
    from ner_imbalance.config.arguments import parse_arguments
    from ner_imbalance.training.run import prepare_run

    argv = run_flags(tiny_model_dir, tmp_path / "new", "--metric_for_best_model", "eval_PER_f1")
    assert prepare_run(*parse_arguments(argv)).training_args.metric_for_best_model == "eval_PER_f1"


def test_resume_true_without_checkpoint_is_one_line(tmp_path, earlier_run, tiny_model_dir, capsys):
    empty = tmp_path / "fresh"
    line = fails_in_one_line(capsys, run_flags(tiny_model_dir, empty, "--resume_from_checkpoint", "true"), earlier_run)
    assert "--resume_from_checkpoint true" in line and str(empty) in line


@pytest.mark.parametrize("value", ["true", "True", "last"])
def test_resume_true_continues_from_the_last_checkpoint(value, trained_run, tiny_model_dir, tmp_path):
    import shutil

    folder = tmp_path / "resumed"
    shutil.copytree(trained_run, folder)
    argv = run_flags(tiny_model_dir, folder, "--resume_from_checkpoint", value)
    argv[argv.index("--max_steps") + 1] = "3"
    if value != "true":  # one resumed training is enough; the others only resolve the checkpoint
        from ner_imbalance.config.arguments import parse_arguments
        from ner_imbalance.training.run import prepare_run

        arguments = parse_arguments(argv)
        prepared = prepare_run(*arguments, resume_from_checkpoint=arguments[3].resume_from_checkpoint)
        assert prepared.resume_from_checkpoint == str(folder / "checkpoint-2")
        return
    assert train.main(argv) == 0
    state = json.loads((folder / "trainer_state.json").read_text())
    assert state["global_step"] == 3, "steps 1-2 came from the checkpoint, step 3 was trained"
    assert (folder / "checkpoint-3").is_dir()


def test_resume_and_overwrite_together_are_refused(earlier_run, tiny_model_dir, capsys):
    argv = run_flags(tiny_model_dir, earlier_run, "--overwrite_output_dir", "true", "--resume_from_checkpoint", "true")
    line = fails_in_one_line(capsys, argv, earlier_run)
    assert "--overwrite_output_dir" in line and "--resume_from_checkpoint" in line


def test_iob1_warning_names_the_real_flags(caplog):
    import datasets

    from ner_imbalance.data.labels import prepare_tags

    corpus = datasets.DatasetDict(
        {"train": datasets.Dataset.from_dict({"tokens": [["New", "York"]], "tags": [["I-LOC", "I-LOC"]]})}
    )
    prepare_tags(corpus)
    assert "--tag_scheme iob1" in caplog.text and "--repair_tags" in caplog.text


def test_evaluation_only_run_does_not_claim_to_have_trained(tmp_path, tiny_model_dir):
    folder = tmp_path / "eval_only"
    argv = run_flags(tiny_model_dir, folder, "--do_train", "false", "--eval_strategy", "no")
    assert train.main([*argv, "--load_best_model_at_end", "false"]) == 0
    card = (folder / "README.md").read_text()
    assert "no training" in card and "trained nothing" in card
    assert "trained with" not in card and "Training data" not in card
    assert (folder / "eval_results.json").is_file() and not (folder / "model.safetensors").exists()
