"""Fine-tune a token-classification model with an imbalance-aware loss.

    ner-train --loss focal
    ner-train configs/wnut17_focal.yaml
    ner-train --config configs/wnut17_focal.yaml --num_train_epochs 1
    accelerate launch -m ner_imbalance.cli.train --loss focal      # or: accelerate launch scripts/train_ner.py

With no data or model flags it trains the packaged MiniLM on the packaged demo corpus, offline.
`--help` lists every flag; the `transformers.TrainingArguments` flags this package refuses or
treats differently are in docs/training_flags.md.

Everything is checked before the model loads (`training.run.prepare_run`); a bad flag, file or
output folder (one another run is using, too) is one line on stderr and exit status 2.
`--traceback` (or NER_IMBALANCE_DEBUG=1) shows the traceback instead. Errors once the work has
begun keep their traceback.

SIGTERM or Ctrl-C during training finishes the step, saves a checkpoint, prints one line saying
how to resume and exits with status 143 (SIGTERM) or 130 (Ctrl-C) (`training.preemption`). A
Ctrl-C at any other moment, or a second one, stops at once: one line, status 130, no traceback;
so does SIGTERM at any other moment, with status 143.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from types import FrameType
from typing import NoReturn

import transformers

from ner_imbalance.cli.common import EXIT_SIGINT, one_line, refuse
from ner_imbalance.config.arguments import TRACEBACK_FLAG, parse_arguments
from ner_imbalance.training.run import close_process_group, execute_run, prepare_run
from ner_imbalance.utils.command_line import exit_with

PROGRAM = "ner-train"
DEBUG_ENVIRONMENT_VARIABLE = "NER_IMBALANCE_DEBUG"


def main(argv: list[str] | None = None) -> int:
    """Parse and check `argv` (default: the command line), train, evaluate and save; the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    show_traceback = TRACEBACK_FLAG in argv or os.environ.get(DEBUG_ENVIRONMENT_VARIABLE, "") not in ("", "0")
    try:
        return _train(argv, show_traceback)
    except KeyboardInterrupt:
        if show_traceback:
            raise
        print(f"{PROGRAM}: interrupted (Ctrl-C): stopped without a new checkpoint", file=sys.stderr)
        return EXIT_SIGINT


def _train(argv: list[str], show_traceback: bool) -> int:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    transformers.utils.logging.set_verbosity_warning()
    try:
        model_args, data_args, loss_args, training_args = parse_arguments(argv)
        prepared = prepare_run(
            model_args, data_args, loss_args, training_args, resume_from_checkpoint=training_args.resume_from_checkpoint
        )
    except (ValueError, OSError) as error:  # user errors: UsageError, DataFormatError, FileNotFoundError
        if show_traceback:
            raise
        return refuse(PROGRAM, one_line(error))
    print(f"{PROGRAM}: output folder {prepared.training_args.output_dir}", flush=True)
    execute_run(prepared)
    close_process_group()
    return 0


def _stop_on_sigterm(number: int, frame: FrameType | None) -> None:
    """SIGTERM outside training (where it saves a checkpoint first): one line, then exit 143 (the lock is released)."""
    print(f"{PROGRAM}: SIGTERM: stopped without a new checkpoint", file=sys.stderr, flush=True)
    raise SystemExit(128 + number)


def run() -> NoReturn:
    """The `ner-train` command: SIGTERM stops with one line (training's own handler saves a checkpoint first)."""
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    exit_with(main)


if __name__ == "__main__":
    run()
