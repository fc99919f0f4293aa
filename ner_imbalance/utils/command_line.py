"""What every command shares: its `--version`, and how it ends when the reader of its output stops reading
(`| head`): quietly, as `cat` does."""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import signal
import sys
from collections.abc import Callable
from typing import NoReturn

# The status a shell reports for a writer stopped by SIGPIPE: 128 + the signal's number.
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE
DISTRIBUTION = "ner_imbalance"
"""The installed distribution whose version `--version` prints."""


def add_version_flag(parser: argparse.ArgumentParser) -> None:
    """`--version`: print `<prog> <the installed ner_imbalance version>` and exit 0."""
    version = importlib.metadata.version(DISTRIBUTION)
    parser.add_argument("--version", action="version", version=f"%(prog)s {version}")


def exit_with(main: Callable[[], int]) -> NoReturn:
    """`sys.exit(main())`, ending with status `EXIT_BROKEN_PIPE` and no traceback when stdout is a
    pipe whose reader has closed it.

    Python ignores SIGPIPE, so a write to a closed pipe raises `BrokenPipeError`, in `main` or in the
    last flush of stdout; stdout is then pointed at `os.devnull`, so that the interpreter's own flush
    at exit finds nothing to fail on (the recipe of the `signal` module's documentation).
    """
    try:
        status = main()
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(EXIT_BROKEN_PIPE)
    sys.exit(status)
