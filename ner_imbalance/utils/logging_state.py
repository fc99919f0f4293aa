"""The `logging` configuration of the process, put back as it was after a block that changes it.

Libraries change it as a side effect: ONNX Runtime's quantisation logs through the root logger
(`logging.warning`), which installs a stderr handler on it when it has none, and the torch ONNX
exporter resets torch's loggers. A command that quiets libraries for its own run changes levels too.
Run in-process (a test, a notebook), such changes outlive the call: a root logger left at ERROR
drops every later warning of the package's modules. The progress bars of `datasets` and
`transformers` are switches of their own, not loggers: `progress_bars_off` puts them back.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import datasets
import transformers


@dataclass(frozen=True)
class LoggerState:
    """What a block may change of one logger."""

    level: int
    handlers: tuple[logging.Handler, ...]
    propagate: bool
    disabled: bool

    @classmethod
    def of(cls, logger: logging.Logger) -> LoggerState:
        return cls(logger.level, tuple(logger.handlers), logger.propagate, logger.disabled)

    def restore(self, logger: logging.Logger) -> None:
        if logger.level != self.level:
            logger.setLevel(self.level)  # also clears the loggers' cached isEnabledFor answers
        if tuple(logger.handlers) != self.handlers:
            logger.handlers[:] = self.handlers
        logger.propagate = self.propagate
        logger.disabled = self.disabled


def existing_loggers() -> dict[str, logging.Logger]:
    """The root logger (under "") and every logger created so far, by name."""
    loggers = {
        name: logger for name, logger in logging.Logger.manager.loggerDict.items() if isinstance(logger, logging.Logger)
    }
    return {"": logging.getLogger(), **loggers}


@contextmanager
def logging_restored() -> Iterator[None]:
    """Run the block, then give every logger that existed before it its level, handlers, `propagate` and
    `disabled` back, and `logging.disable`'s threshold. Loggers created inside the block keep their state
    (their library configured them); handlers added to an existing logger are detached, not closed."""
    states = {name: LoggerState.of(logger) for name, logger in existing_loggers().items()}
    disabled_below = logging.root.manager.disable
    try:
        yield
    finally:
        loggers = existing_loggers()
        for name, state in states.items():
            state.restore(loggers[name])
        if logging.root.manager.disable != disabled_below:
            logging.disable(disabled_below)


@contextmanager
def progress_bars_off() -> Iterator[None]:
    """The `datasets` and `transformers` progress bars off while the block runs, then as they were (a
    pipeline windows one text at a time, a file is tokenized chunk by chunk: one bar each would flood
    stderr)."""
    datasets_were_on = not datasets.are_progress_bars_disabled()
    transformers_were_on = transformers.utils.logging.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    try:
        yield
    finally:
        if datasets_were_on:
            datasets.enable_progress_bars()
        if transformers_were_on:
            transformers.utils.logging.enable_progress_bar()
