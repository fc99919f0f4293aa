"""utils.logging_state: the loggers that existed before a block, and the progress bars, are as before after it."""

from __future__ import annotations

import logging

import datasets
import pytest
import transformers

from ner_imbalance.utils.logging_state import logging_restored, progress_bars_off


def test_levels_handlers_propagate_disabled_and_disable_are_put_back_after_an_error():
    parent, child = logging.getLogger("logging_state_test"), logging.getLogger("logging_state_test.child")
    root_handlers = logging.getLogger().handlers[:]
    with pytest.raises(RuntimeError), logging_restored():
        parent.setLevel(logging.ERROR)
        assert not child.isEnabledFor(logging.WARNING)  # the child caches this answer
        parent.addHandler(logging.NullHandler())
        child.propagate = False
        child.disabled = True
        logging.getLogger().addHandler(logging.NullHandler())  # what logging.warning does to a root with none
        logging.disable(logging.CRITICAL)
        raise RuntimeError("the block fails")
    assert (parent.level, parent.handlers, child.propagate, child.disabled) == (logging.NOTSET, [], True, False)
    assert logging.getLogger().handlers == root_handlers
    assert logging.root.manager.disable == logging.NOTSET
    assert child.isEnabledFor(logging.WARNING)  # no stale answer cached from inside the block


def test_a_logger_created_inside_keeps_the_state_its_library_gave_it():
    with logging_restored():
        created = logging.getLogger("logging_state_test.created_inside")
        created.setLevel(logging.DEBUG)
        created.propagate = False
    assert (created.level, created.propagate) == (logging.DEBUG, False)


def progress_bars_on() -> tuple[bool, bool]:
    return not datasets.are_progress_bars_disabled(), transformers.utils.logging.is_progress_bar_enabled()


def set_progress_bars(datasets_on: bool, transformers_on: bool) -> None:
    (datasets.enable_progress_bars if datasets_on else datasets.disable_progress_bars)()
    bars = transformers.utils.logging
    (bars.enable_progress_bar if transformers_on else bars.disable_progress_bar)()


@pytest.mark.parametrize("on", [True, False])
def test_progress_bars_are_off_inside_and_as_they_were_after_an_error(on):
    were_on = progress_bars_on()
    set_progress_bars(on, on)
    try:
        with pytest.raises(RuntimeError), progress_bars_off():
            assert progress_bars_on() == (False, False)
            raise RuntimeError("the block fails")
        assert progress_bars_on() == (on, on)
    finally:
        set_progress_bars(*were_on)
