"""A real training subprocess of the tiny random BERT that tests can signal: `start` it, `wait_for` a file.

Shared by the preemption and lock tests (tests/training/). Checkpoints every `SAVE_STEPS` of `STEPS`
steps of GHM-C (a loss with state) on the tiny corpus, resumable mid-epoch exactly.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tiny_models import REPO, tiny_corpus_flags

SCRIPT = REPO / "scripts" / "train_ner.py"
STEPS, SAVE_STEPS = 120, 40
TRAINING = [
    *("--max_steps", str(STEPS), "--save_strategy", "steps", "--save_steps", str(SAVE_STEPS)),
    *("--eval_strategy", "no", "--load_best_model_at_end", "false", "--per_device_train_batch_size", "2"),
    *("--max_seq_length", "32", "--stride", "8", "--use_cpu", "true", "--disable_tqdm", "true"),
    *("--report_to", "none", "--loss", "ghmc", "--dataloader_num_workers", "0", "--logging_steps", "1000"),
    # Resumable mid-epoch exactly (accelerate's seeded sampler); the Trainer's length grouping draws its
    # permutation from the global RNG, which a resume restores to the checkpoint's step, not the epoch's start.
    *("--train_sampling_strategy", "random"),
]


def start(model_dir: Path, output_dir: Path, *extra: str) -> subprocess.Popen:
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), *tiny_corpus_flags(model_dir, output_dir, *TRAINING, *extra)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**environment, "OMP_NUM_THREADS": "1"},
        start_new_session=True,  # its own process group, as a terminal's foreground job
        # A suite started in the background by a non-interactive shell passes SIGINT on as ignored, and Python
        # then keeps ignoring it: the child starts with the default, as from a terminal, however pytest started.
        preexec_fn=_default_sigint,
    )


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_for(path: Path, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, f"the run ended before {path} appeared: {process.communicate()[1][-3000:]}"
        assert time.monotonic() < deadline, f"no {path} after {timeout} s"
        time.sleep(0.02)
