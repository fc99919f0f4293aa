"""ner-predict streams its input and keeps the one-line-error contract: chunks, blank lines, passed-through
fields, atomic output with umask permissions, interruption, and every refused case of issue 28.

A tiny random BERT stands in for a trained model (`tiny_models`), so nothing here needs ../shared.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tiny_models import output_state, predict_flags, umask

from ner_imbalance.cli import predict
from ner_imbalance.inference import Sentence, Tagger, iter_sentences, tag_chunks
from ner_imbalance.inference.signals import Terminated, stop_between_chunks

PREDICT = ["-m", "ner_imbalance.cli.predict"]
"""`ner-predict` in a process of its own."""


LABELS = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A random BertForTokenClassification with NER labels (128 positions) and its tokenizer."""
    from tiny_models import save_tiny_tagger

    return save_tiny_tagger(tmp_path_factory.mktemp("stream_model"), LABELS, seed=5)


def _run(model: Path | str, source: Path, output: Path | str, *extra: str) -> int:
    return predict.main([*predict_flags(model, source), "--output", str(output), *extra])


def test_chunks_do_not_change_the_output(tmp_path, model_dir):
    source = tmp_path / "in.txt"
    lines = ["john visited paris and london today", "mary", "the city of xyz abcd " * 6, "paris"] * 5
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert _run(model_dir, source, tmp_path / "one.jsonl", "--chunk_size", "1") == 0
    assert _run(model_dir, source, tmp_path / "three.jsonl", "--chunk_size", "3") == 0
    assert _run(model_dir, source, tmp_path / "all.jsonl", "--chunk_size", "1000") == 0
    whole = _records(tmp_path / "all.jsonl")
    assert len(whole) == len(lines)
    for chunked in (_records(tmp_path / "one.jsonl"), _records(tmp_path / "three.jsonl")):
        assert [_without_probabilities(record) for record in chunked] == [
            _without_probabilities(record) for record in whole
        ], "tags and entities do not depend on the chunks"
        # float32 sums depend on a batch's composition and padding: the probabilities agree to float noise
        assert _probabilities(chunked) == pytest.approx(_probabilities(whole), abs=1e-6)


def test_in_process_it_leaves_logging_and_progress_bars_as_it_found_them(tmp_path, model_dir):
    """ner-predict quiets transformers and datasets for its own run only: called from Python (a test, a
    notebook), the caller's verbosity and progress bars are as before."""
    source = tmp_path / "in.txt"
    source.write_text("john visited paris\n", encoding="utf-8")
    before = output_state()
    assert _run(model_dir, source, tmp_path / "out.jsonl") == 0
    after = output_state()
    after["loggers"] = {name: after["loggers"][name] for name in before["loggers"]}  # new ones: the libraries' own
    assert after == before


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _without_probabilities(record: dict) -> dict:
    entities = [{key: value for key, value in entity.items() if key != "probability"} for entity in record["entities"]]
    return {**record, "entities": entities}


def _probabilities(records: list[dict]) -> list[float]:
    return [entity["probability"] for record in records for entity in record["entities"]]


def test_tag_chunks_reads_one_chunk_ahead_at_most(model_dir):
    tagger = Tagger.from_folder(model_dir, device="cpu", max_seq_length=8, stride=2)
    read = []

    def sentences():
        for number in range(10):
            read.append(number)
            yield Sentence(["john", "visited", "paris"][: 1 + number % 3])

    for count, chunk in enumerate(tag_chunks(tagger, sentences(), chunk_size=4), start=1):
        assert len(read) <= 4 * count, "a chunk is tagged and handed on before the next one is read"
        assert len(chunk) == (4 if count < 3 else 2)


def test_blank_lines_stay_empty_records_and_fields_pass_through(tmp_path, model_dir):
    text = tmp_path / "in.txt"
    text.write_text("John visited Paris\n\n   \nMary\n", encoding="utf-8")
    assert _run(model_dir, text, tmp_path / "text.jsonl") == 0
    records = [json.loads(line) for line in (tmp_path / "text.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [record["tokens"] for record in records] == [["John", "visited", "Paris"], [], [], ["Mary"]]
    assert records[2] == {"text": "   ", "tokens": [], "tags": [], "entities": []}

    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text(
        '{"id": "a1", "tokens": ["John", "ran"], "tags": ["B-PER", "O"], "meta": {"x": 1}}\n'
        "\n"
        '{"id": "a3", "tokens": []}\n'
        '{"tokens": ["Paris"], "id": 4}\n',
        encoding="utf-8",
    )
    assert _run(model_dir, jsonl, tmp_path / "out.jsonl") == 0
    records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [record.get("id") for record in records] == ["a1", None, "a3", 4]
    assert records[0]["meta"] == {"x": 1} and list(records[0])[:2] == ["id", "meta"]
    assert len(records[0]["tags"]) == 2 and records[1] == {"tokens": [], "tags": [], "entities": []}


def test_iter_sentences_is_lazy_and_names_the_line_of_bad_bytes(tmp_path):
    source = tmp_path / "in.conll"
    source.write_bytes(b"John\nran\n\nParis\n\n\xff\xfe\n")
    sentences = iter_sentences(source)
    assert next(sentences).tokens == ["John", "ran"] and next(sentences).tokens == ["Paris"]
    with pytest.raises(ValueError, match=r"in.conll, line 6: not UTF-8"):
        next(sentences)


def test_output_has_umask_permissions_and_no_temporary_file_is_left(tmp_path, model_dir):
    source = tmp_path / "in.txt"
    source.write_text("John visited Paris\n", encoding="utf-8")
    with umask(0o022):
        assert _run(model_dir, source, tmp_path / "out" / "tags.conll") == 0
    assert (tmp_path / "out" / "tags.conll").stat().st_mode & 0o777 == 0o644
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["tags.conll"]


def _model_without(model_dir: Path, folder: Path, *missing: str) -> Path:
    folder.mkdir()
    for path in model_dir.iterdir():
        if path.name not in missing:
            (folder / path.name).write_bytes(path.read_bytes())
    return folder


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("output_is_input", "is the input file"),
        ("output_links_to_input", "is the input file"),
        ("output_is_a_folder", "is a folder: give a file name"),
        ("no_weights", "no model weights"),
        ("no_tokenizer", "no tokenizer files"),
        ("too_long_windows", "--max_seq_length 1024 exceeds the 128 positions"),
        ("no_onnx_graph", "export it first: ner-export-onnx"),
        ("bad_line_later", "line 3: empty token column"),
    ],
)
def test_refused_cases_are_one_line_exit_2_and_leave_the_input_alone(tmp_path, model_dir, capsys, case, message):
    source = tmp_path / "in.conll"
    source.write_text("John\tB-PER\nran\tO\n\tO\n", encoding="utf-8")
    before = source.read_bytes()
    model, output, extra = model_dir, tmp_path / "out.conll", []
    if case == "output_is_input":
        output = source
    elif case == "output_links_to_input":
        output = tmp_path / "link.conll"
        output.symlink_to(source)
    elif case == "output_is_a_folder":
        output = tmp_path / "folder"
        output.mkdir()
    elif case == "no_weights":
        model = _model_without(model_dir, tmp_path / "no_weights", "model.safetensors")
    elif case == "no_tokenizer":
        model = _model_without(model_dir, tmp_path / "no_tokenizer", "tokenizer.json", "tokenizer_config.json")
    elif case == "too_long_windows":
        extra = ["--max_seq_length", "1024"]
    elif case == "no_onnx_graph":
        extra = ["--backend", "onnx"]
    capsys.readouterr()
    assert _run(model, source, output, *extra) == 2
    error = capsys.readouterr().err.strip()
    assert message in error and len(error.splitlines()) == 1 and error.startswith("ner-predict: error: ")
    assert source.read_bytes() == before
    assert not (tmp_path / "out.conll").exists()


def test_the_contract_holds_in_a_real_process(tmp_path, model_dir):
    folder = _model_without(model_dir, tmp_path / "no_weights", "model.safetensors")
    source = tmp_path / "in.txt"
    source.write_text("John ran\n", encoding="utf-8")
    command = [sys.executable, *PREDICT, "--model", str(folder), "--input", str(source)]
    result = subprocess.run([*command, "--output", str(source)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr and source.read_text(encoding="utf-8") == "John ran\n"


def test_stdout_cut_short_by_head_ends_quietly(tmp_path, model_dir):
    source = tmp_path / "big.txt"
    source.write_text("john visited paris and london today\n" * 20000, encoding="utf-8")  # far over a pipe's 64 KiB
    process = subprocess.Popen(
        [sys.executable, *PREDICT, *predict_flags(model_dir, source), "--output", "-"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout.readline().startswith(b"john\t")
    process.stdout.close()  # what `| head -1` does
    stderr = process.stderr.read().decode()
    process.wait(timeout=240)
    assert stderr == "" and process.returncode == 141  # 128 + SIGPIPE, as a shell reports `cat` cut short


def _written_temporary(folder: Path, prefix: str) -> bool:
    """Whether `folder` holds a non-empty temporary output whose name starts with `prefix` (`atomic_open`'s)."""
    return any(path.stat().st_size > 0 for path in folder.glob(f"{prefix}*.tmp"))


def test_sigterm_leaves_no_partial_output_and_says_how_far(tmp_path, model_dir):
    source = tmp_path / "big.txt"
    source.write_text("john visited paris and london today\n" * 200000, encoding="utf-8")  # far more than the wait
    output = tmp_path / "tags.jsonl"
    output.write_text("an earlier result\n", encoding="utf-8")
    process = subprocess.Popen(
        [sys.executable, *PREDICT, *predict_flags(model_dir, source), "--output", str(output)] + ["--chunk_size", "50"],
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 240
    while not _written_temporary(tmp_path, ".tags.jsonl.") and time.monotonic() < deadline:
        assert process.poll() is None, "the run ended before it could be signalled: give it more input"
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 143, stderr
    (line,) = stderr.strip().splitlines()
    assert line.startswith("ner-predict: terminated (SIGTERM) after ") and "sentences" in line
    assert f"not written ({output} left as it was)" in line
    assert output.read_text(encoding="utf-8") == "an earlier result\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["big.txt", "tags.jsonl"]


@pytest.mark.parametrize(
    ("signal_number", "raised"), [(signal.SIGTERM, Terminated), (signal.SIGINT, KeyboardInterrupt)]
)
def test_a_signal_is_recorded_and_raised_only_at_the_check(signal_number, raised):
    before = {number: signal.getsignal(number) for number in (signal.SIGTERM, signal.SIGINT)}
    with stop_between_chunks() as stop_if_signalled:
        stop_if_signalled()  # nothing received yet
        os.kill(os.getpid(), signal_number)  # delivered here, in the main thread, without raising
        with pytest.raises(raised):
            stop_if_signalled()
    assert {number: signal.getsignal(number) for number in before} == before


def test_a_second_ctrl_c_stops_at_once():
    with stop_between_chunks(), pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)
