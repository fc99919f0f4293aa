"""The exception of a run's preparation phase that means "the user asked for something impossible".

`UsageError` (a flag, a combination of flags, an output folder) and `data.readers.DataFormatError`
(an input file) are both `ValueError`s whose message is one line naming the flag or the file and
line. The commands (`ner_imbalance.cli`) print such a message as one line and exit with status 2; an
error of any other type, or one raised once the work has begun, is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
from typing import NoReturn


class UsageError(ValueError):
    """A bad flag, combination of flags or output folder; the message names the flag and says why."""


class OneLineArgumentParser(argparse.ArgumentParser):
    """An `argparse.ArgumentParser` whose errors raise a one-line `UsageError` instead of printing the usage
    text and exiting.

    The commands' contract for bad input is one line naming the flag, exit status 2, before any work:
    the command prints the `UsageError` of its parser as it prints every other bad input
    (`ner_imbalance.cli`). `--help` and `--version` still print and exit 0.
    """

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)
