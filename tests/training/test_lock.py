"""Issue 28: a run locks its output folder; a second run into a live run's folder is refused before any deletion."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from signalled_runs import SAVE_STEPS, start, wait_for
from tiny_models import one_error_line, snapshot, tiny_corpus_flags

from ner_imbalance.cli import train
from ner_imbalance.errors import UsageError
from ner_imbalance.training.checkpoints import COMPLETE_MARKER
from ner_imbalance.training.lock import LOCK_FILE, check_output_lock, release_output_lock, take_output_lock
from ner_imbalance.training.output_folder import check_output_dir, clear_output_dir


def write_lock(folder: Path, host: str, pid: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_FILE
    path.write_text(json.dumps({"host": host, "pid": pid, "started": "2026-12-01T10:00:00", "command": "x"}))
    return path


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_the_lock_names_host_and_process_and_is_released(tmp_path):
    path = take_output_lock(tmp_path / "run")
    holder = json.loads(path.read_text())
    assert holder["host"] == socket.gethostname() and holder["pid"] == os.getpid()
    assert take_output_lock(tmp_path / "run") == path, "this process holds it: taken again"
    release_output_lock(tmp_path / "run")
    assert not path.exists()


def test_a_stale_lock_of_this_host_is_taken_over(tmp_path):
    write_lock(tmp_path, socket.gethostname(), dead_pid())
    check_output_lock(tmp_path)
    path = take_output_lock(tmp_path)
    assert json.loads(path.read_text())["pid"] == os.getpid()
    release_output_lock(tmp_path)


def test_a_live_lock_of_this_host_is_refused(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        write_lock(tmp_path, socket.gethostname(), sleeper.pid)
        with pytest.raises(UsageError, match=f"in use by a run still going \\(process {sleeper.pid} on this host"):
            take_output_lock(tmp_path)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == sleeper.pid, "a refused run leaves the lock"


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_lock_of_another_host_is_one_line_naming_it_and_how_to_remove_it(tmp_path, tiny_model_dir, capsys, overwrite):
    run = tmp_path / "run"
    lock = write_lock(run, "gpu-node-17", 4242)
    (run / "eval_results.json").write_text('{"eval_f1": 0.5}')
    before = snapshot(run)
    flags = ("--overwrite_output_dir", "true") if overwrite else ()
    assert train.main(tiny_corpus_flags(tiny_model_dir, run, "--use_cpu", "true", *flags)) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "locked by process 4242 on host gpu-node-17" in line and f"delete {lock}" in line
    assert snapshot(run) == before


def test_a_damaged_lock_is_refused_naming_it(tmp_path):
    (tmp_path / LOCK_FILE).write_text("{not json")
    with pytest.raises(UsageError, match=f"damaged lock {tmp_path / LOCK_FILE}"):
        check_output_lock(tmp_path)


def test_the_folder_policy_neither_counts_nor_deletes_the_lock(tmp_path):
    write_lock(tmp_path, socket.gethostname(), os.getpid())
    check_output_dir(str(tmp_path), resuming=False, overwrite=False)  # only a lock: empty
    (tmp_path / "old.json").write_text("{}")
    clear_output_dir(str(tmp_path))
    assert [path.name for path in tmp_path.iterdir()] == [LOCK_FILE]


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_second_run_into_a_live_runs_folder_is_refused_before_anything_is_deleted(
    tmp_path, tiny_model_dir, capsys, overwrite
):
    first = start(tiny_model_dir, tmp_path / "run")
    try:
        wait_for(tmp_path / "run" / f"checkpoint-{SAVE_STEPS}" / COMPLETE_MARKER, first)
        flags = ("--overwrite_output_dir", "true") if overwrite else ()
        assert train.main(tiny_corpus_flags(tiny_model_dir, tmp_path / "run", "--use_cpu", "true", *flags)) == 2
        line = one_error_line(capsys.readouterr().err)
        assert f"in use by a run still going (process {first.pid} on this host" in line
        assert (tmp_path / "run" / f"checkpoint-{SAVE_STEPS}").is_dir(), "nothing of the live run was deleted"
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=120)
    assert first.returncode == 143 and not (tmp_path / "run" / LOCK_FILE).exists()
