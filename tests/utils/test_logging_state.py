"""utils.logging_state.logging_restored: the loggers that existed before a block get their state back after it."""

from __future__ import annotations

import logging

import pytest

from ner_imbalance.utils.logging_state import logging_restored


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
