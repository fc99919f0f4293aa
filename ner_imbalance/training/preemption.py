"""Preemption: SIGTERM and Ctrl-C stop training after a whole optimizer step, with a checkpoint to resume from.

SLURM, Kubernetes and spot instances send SIGTERM some time before they kill a job; Ctrl-C sends
SIGINT. While `ImbalanceTrainer.train` runs (inside `PreemptionCallback.signal_handlers`), either
signal only sets a flag. At the end of the current optimizer step the Trainer then writes a
checkpoint (weights, optimizer, scheduler, RNG states, loss state, the step that places the sampler)
and marks it complete; one line on stderr says where it is and how to resume; and the process
exits with status 143 after SIGTERM, 130 after Ctrl-C (128 + the signal's number, as the shell
reports a process the signal killed) by raising `TrainingStopped`, a `SystemExit`. A signal that
comes after the last step is delivered again once `train()` returns, to the handlers of before.

A Ctrl-C once stopping has begun raises `KeyboardInterrupt` at once, without a checkpoint. Under
`torch.distributed` the flag is all-reduced at every step end, so every process stops at the same
step, also those the signal did not reach. Outside `train()` the previous handlers are in place.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import torch
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from ner_imbalance.training.checkpoints import checkpoint_folder

EXIT_STATUS = {signal.SIGTERM: 128 + signal.SIGTERM, signal.SIGINT: 128 + signal.SIGINT}
SIGNAL_NAMES = {signal.SIGTERM: "SIGTERM", signal.SIGINT: "Ctrl-C"}


class TrainingStopped(SystemExit):
    """Training stopped by a signal after its checkpoint was written; `code` is the exit status (143, 130)."""


class PreemptionCallback(TrainerCallback):
    """Turns SIGTERM and the first Ctrl-C into a checkpoint at the next step end, then `TrainingStopped`."""

    def __init__(self) -> None:
        self.received: int = 0  # the signal received during this train(), 0 for none
        self._stopping: int = 0  # the signal every process agreed to stop on
        self._flag_group: Any = None  # a CPU process group for the flag, so that checking it never waits on the GPU
        self._pid = os.getpid()  # data-loader workers forked during training inherit the handlers, and ignore them

    @contextmanager
    def signal_handlers(self) -> Iterator[None]:
        """Handle SIGTERM and SIGINT as described above inside the block (main thread only), restoring the previous
        handlers after it."""
        self.received = self._stopping = 0
        self._pid = os.getpid()
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {number: signal.signal(number, self._handle) for number in EXIT_STATUS}
        try:
            yield
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)
        if self.received and not self._stopping:  # it came after the last step: it acts as it would have
            signal.raise_signal(self.received)

    def _handle(self, number: int, frame: FrameType | None) -> None:
        if os.getpid() != self._pid:
            return
        if self.received and number == signal.SIGINT:
            raise KeyboardInterrupt
        if not self.received:
            self.received = number
            if number == signal.SIGINT:
                print(
                    f"{_program()}: Ctrl-C: stopping after this step with a checkpoint; Ctrl-C again aborts at once",
                    file=sys.stderr,
                    flush=True,
                )

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> TrainerControl:
        if _distributed() and self._flag_group is None:
            import torch.distributed as dist

            self._flag_group = dist.new_group(backend="gloo") if dist.get_backend() != "gloo" else dist.group.WORLD
        return control

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> TrainerControl:
        self._stopping = self._agreed_signal()
        if self._stopping:
            control.should_save = True
            control.should_training_stop = True
            if args.save_strategy == "best":  # its evaluation would decide again whether to save
                control.should_evaluate = False
        return control

    def _agreed_signal(self) -> int:
        """The signal this process or any other received (SIGTERM before SIGINT), 0 for none."""
        if not _distributed():
            return self.received
        import torch.distributed as dist

        flag = torch.tensor([self.received], dtype=torch.int64)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX, group=self._flag_group)
        return int(flag.item())

    def on_save(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> TrainerControl:
        if not self._stopping:
            return control
        folder = checkpoint_folder(args, state)
        if state.is_world_process_zero and folder.is_dir():
            print(
                f"{_program()}: {SIGNAL_NAMES[self._stopping]}: training stopped after step {state.global_step} "
                f"with checkpoint {folder}; to continue, run the same command with "
                f"--resume_from_checkpoint true --output_dir {args.output_dir}",
                file=sys.stderr,
                flush=True,
            )
        elif state.is_world_process_zero:  # a hyperparameter-search trial: its study resumes, not its checkpoint
            print(
                f"{_program()}: {SIGNAL_NAMES[self._stopping]}: training stopped after step {state.global_step}; "
                "run the same command again to continue",
                file=sys.stderr,
                flush=True,
            )
        raise TrainingStopped(EXIT_STATUS[self._stopping])


def _distributed() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


def _program() -> str:
    return os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "ner_imbalance"
