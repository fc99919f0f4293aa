"""Issue 28: SIGTERM and Ctrl-C stop a real `train_ner.py` run after a whole step, with a complete checkpoint.

The signalled run is a subprocess of the tiny random BERT on the tiny corpus (GHM-C, so the loss
has state; dropout, so the RNG matters), signalled once its first regular checkpoint is complete,
that is between two save steps. Resuming from the checkpoint it writes gives the weights and
scores of the same run left alone, compared with `torch.equal`. The second Ctrl-C and the
all-reduced stop flag of several processes are tested on the callback itself.
"""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from signalled_runs import SAVE_STEPS, STEPS, start, wait_for
from transformers import TrainerControl, TrainerState

from ner_imbalance.config.arguments import NerTrainingArguments
from ner_imbalance.training.checkpoints import COMPLETE_MARKER, checkpoint_problem
from ner_imbalance.training.lock import LOCK_FILE
from ner_imbalance.training.preemption import PreemptionCallback

STOP_LINE = re.compile(r"training stopped after step (\d+) with checkpoint (\S+); to continue")


def scores(folder: Path) -> dict[str, float]:
    results = json.loads((folder / "eval_results.json").read_text())
    return {key: value for key, value in results.items() if "runtime" not in key and "per_second" not in key}


@pytest.fixture(scope="module")
def stopped_and_reference(tmp_path_factory, tiny_model_dir):
    """A run signalled with SIGTERM after its first checkpoint, and the same run left alone (started together)."""
    root = tmp_path_factory.mktemp("preemption")
    reference = start(tiny_model_dir, root / "reference")
    stopped = start(tiny_model_dir, root / "stopped")
    wait_for(root / "stopped" / f"checkpoint-{SAVE_STEPS}" / COMPLETE_MARKER, stopped)
    stopped.send_signal(signal.SIGTERM)
    _, stopped_err = stopped.communicate(timeout=120)
    _, reference_err = reference.communicate(timeout=300)
    assert reference.returncode == 0, reference_err[-3000:]
    return root, stopped.returncode, stopped_err


def test_sigterm_saves_a_complete_checkpoint_says_how_to_resume_and_exits_143(stopped_and_reference):
    root, returncode, stderr = stopped_and_reference
    assert returncode == 143, stderr[-3000:]
    assert "Traceback" not in stderr
    stops = [line for line in stderr.splitlines() if STOP_LINE.search(line)]
    assert len(stops) == 1, stderr[-3000:]
    step, checkpoint = int(STOP_LINE.search(stops[0]).group(1)), Path(STOP_LINE.search(stops[0]).group(2))
    assert SAVE_STEPS < step < STEPS, "stopped between two save steps, before the end"
    assert stops[0].startswith("train_ner.py: SIGTERM: ")
    assert f"--resume_from_checkpoint true --output_dir {root / 'stopped'}" in stops[0]
    assert checkpoint == root / "stopped" / f"checkpoint-{step}" and checkpoint_problem(checkpoint) is None
    for name in ("model.safetensors", "optimizer.pt", "scheduler.pt", "rng_state.pth", "loss_state.pt"):
        assert (checkpoint / name).is_file(), name
    assert not (root / "stopped" / "model.safetensors").exists(), "the run stopped: no final model"
    assert not (root / "stopped" / LOCK_FILE).exists(), "the lock is released"


def test_resuming_the_stopped_run_gives_the_uninterrupted_weights_and_scores(stopped_and_reference, tiny_model_dir):
    root, _, stopped_err = stopped_and_reference
    step = int(STOP_LINE.search(stopped_err).group(1))
    resumed = start(tiny_model_dir, root / "stopped", "--resume_from_checkpoint", "true")
    _, stderr = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, stderr[-3000:]
    assert f"resuming from {root / 'stopped' / f'checkpoint-{step}'}" in stderr
    state = json.loads((root / "stopped" / "trainer_state.json").read_text())
    assert state["global_step"] == STEPS
    expected = load_file(str(root / "reference" / "model.safetensors"))
    actual = load_file(str(root / "stopped" / "model.safetensors"))
    assert actual.keys() == expected.keys()
    assert all(torch.equal(actual[name], expected[name]) for name in expected)
    assert scores(root / "stopped") == scores(root / "reference")
    assert oct((root / "stopped" / "model.safetensors").stat().st_mode & 0o777) == oct(0o666 & ~current_umask())


def current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_ctrl_c_saves_a_checkpoint_and_exits_130(tmp_path, tiny_model_dir):
    # Data-loader workers get the terminal's Ctrl-C too: they ignore it, the main process stops.
    process = start(tiny_model_dir, tmp_path / "run", "--dataloader_num_workers", "2")
    wait_for(tmp_path / "run" / f"checkpoint-{SAVE_STEPS}" / COMPLETE_MARKER, process)
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole group
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130 and "Traceback" not in stderr, stderr[-3000:]
    lines = stderr.splitlines()
    assert sum(line.startswith("train_ner.py: Ctrl-C: stopping after this step") for line in lines) == 1
    stops = [line for line in lines if STOP_LINE.search(line)]
    assert len(stops) == 1 and stops[0].startswith("train_ner.py: Ctrl-C: training stopped after step")
    assert checkpoint_problem(STOP_LINE.search(stops[0]).group(2)) is None


@pytest.mark.parametrize(
    ("signal_number", "status", "line"),
    [
        (signal.SIGINT, 130, "ner-train: interrupted (Ctrl-C): stopped without a new checkpoint"),
        (signal.SIGTERM, 143, "ner-train: SIGTERM: stopped without a new checkpoint"),
    ],
)
def test_a_signal_before_training_is_one_line_without_traceback(tmp_path, tiny_model_dir, signal_number, status, line):
    process = start(tiny_model_dir, tmp_path / "run")
    assert process.stdout.readline().startswith("ner-train: output folder"), "prepared: the model loads next"
    process.send_signal(signal_number)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == status and "Traceback" not in stderr, stderr[-3000:]
    assert [text for text in stderr.splitlines() if text.startswith("ner-train: ")] == [line]
    assert not (tmp_path / "run" / LOCK_FILE).exists(), "the lock is released"


def step_end(callback: PreemptionCallback, args: NerTrainingArguments) -> TrainerControl:
    return callback.on_step_end(args, TrainerState(global_step=5), TrainerControl())


def test_a_second_ctrl_c_aborts_at_once_and_handlers_are_restored(tmp_path):
    args = NerTrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    callback = PreemptionCallback()
    before = signal.getsignal(signal.SIGINT)
    with callback.signal_handlers():
        assert not step_end(callback, args).should_training_stop
        signal.getsignal(signal.SIGINT)(signal.SIGINT, None)
        control = step_end(callback, args)
        assert control.should_save and control.should_training_stop
        with pytest.raises(KeyboardInterrupt):
            signal.getsignal(signal.SIGINT)(signal.SIGINT, None)
        callback._stopping = signal.SIGINT  # stopped by the Trainer: the signal is not delivered again
    assert signal.getsignal(signal.SIGINT) is before


def _agree_on_stop(rank: int, init_file: str, results: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    args = NerTrainingArguments(output_dir=results, use_cpu=True, report_to="none")
    callback = PreemptionCallback()
    callback.on_train_begin(args, TrainerState(), TrainerControl())
    first = step_end(callback, args).should_training_stop
    if rank == 1:
        callback.received = signal.SIGTERM  # only rank 1 got the signal
    second = step_end(callback, args).should_training_stop
    Path(results, f"rank{rank}.json").write_text(json.dumps([first, second, callback._stopping]))
    dist.destroy_process_group()


def test_every_process_stops_at_the_same_step(tmp_path):
    torch.multiprocessing.spawn(_agree_on_stop, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=2)
    for rank in (0, 1):
        assert json.loads((tmp_path / f"rank{rank}.json").read_text()) == [False, True, signal.SIGTERM]
