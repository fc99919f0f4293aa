"""Stop a long tagging run between chunks on SIGTERM or Ctrl-C, never in the middle of library code."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class Terminated(BaseException):
    """SIGTERM arrived: stop tagging, remove the temporary output, say how far the run got (a
    `BaseException`, as `KeyboardInterrupt`, so that no library's `except Exception` swallows it)."""


@contextmanager
def stop_between_chunks() -> Iterator[Callable[[], None]]:
    """Inside the block SIGTERM and Ctrl-C only record themselves; the yielded check raises
    `Terminated` or `KeyboardInterrupt` for them. Called between chunks, it stops the run where no
    library code is running (an exception raised from a handler in the middle of a library call can
    be swallowed there, and the run would go on to exit 0). A second Ctrl-C stops at once."""
    received: list[int] = []

    def record(signum: int, frame: object) -> None:
        if received and signum == signal.SIGINT:
            raise KeyboardInterrupt
        received.append(signum)

    def check() -> None:
        if received:
            raise KeyboardInterrupt if received[0] == signal.SIGINT else Terminated

    previous = {number: signal.signal(number, record) for number in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield check
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
