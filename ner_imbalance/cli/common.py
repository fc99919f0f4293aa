"""What the commands share: their parser, their one-line error and their exit statuses."""

from __future__ import annotations

import argparse
import sys

from ner_imbalance.errors import OneLineArgumentParser
from ner_imbalance.utils.command_line import add_version_flag

EXIT_USAGE = 2
"""Bad input (a flag, a file, an output path), refused before any work."""
EXIT_SIGINT, EXIT_SIGTERM = 130, 143
"""A run stopped by Ctrl-C or SIGTERM: 128 + the signal's number, as a shell reports it."""


def command_parser(program: str, doc: str, *, epilog: bool = False) -> OneLineArgumentParser:
    """The parser of command `program` (errors raise a one-line `UsageError`) with `--version`; its
    description is the first line of the module docstring `doc`, and with `epilog` the whole of it."""
    parser = OneLineArgumentParser(
        prog=program,
        description=doc.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=doc if epilog else None,
    )
    add_version_flag(parser)
    return parser


def one_line(error: BaseException) -> str:
    """The message of `error` on one line (its lines joined by spaces)."""
    return " ".join(line.strip() for line in str(error).splitlines() if line.strip())


def refuse(program: str, message: str) -> int:
    """Print `<program>: error: <message>` on stderr; the status of bad input."""
    print(f"{program}: error: {message}", file=sys.stderr)
    return EXIT_USAGE
