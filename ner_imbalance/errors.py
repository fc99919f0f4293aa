"""The exception of a run's preparation phase that means "the user asked for something impossible".

`UsageError` (a flag, a combination of flags, an output folder) and `data.readers.DataFormatError`
(an input file) are both `ValueError`s whose message is one line naming the flag or the file and
line. `scripts/train_ner.py` prints such a message as one line and exits with status 2; an error of
any other type, or one raised once the work has begun, is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
from typing import NoReturn


class UsageError(ValueError):
    """A bad flag, combination of flags or output folder; the message names the flag and says why."""


class OneLineArgumentParser(argparse.ArgumentParser):
    """An `argparse.ArgumentParser` whose errors are one line (`<prog>: error: ...`, exit 2), without the usage text.

    The commands' contract for bad input: one line naming the flag, exit status 2, before any work.
    """

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")
