"""`atomic_path`: a file another library writes to a name appears whole, with a plain mode, or not at all."""

from __future__ import annotations

import os

import pytest

from ner_imbalance.utils.atomic import atomic_path


def test_the_written_file_is_moved_into_place_with_a_plain_mode(tmp_path):
    target = tmp_path / "sub" / "model.onnx"
    previous = os.umask(0o022)
    try:
        with atomic_path(target) as temporary:
            assert temporary.parent == target.parent and temporary != target
            temporary.write_bytes(b"graph")
            assert not target.exists()
    finally:
        os.umask(previous)
    assert target.read_bytes() == b"graph"
    assert target.stat().st_mode & 0o777 == 0o644
    assert [path.name for path in target.parent.iterdir()] == ["model.onnx"]


def test_a_failed_writer_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "model.onnx"
    target.write_bytes(b"old graph")
    with pytest.raises(RuntimeError, match="killed"):
        with atomic_path(target) as temporary:
            temporary.write_bytes(b"half")
            raise RuntimeError("killed")
    assert target.read_bytes() == b"old graph"
    assert [path.name for path in tmp_path.iterdir()] == ["model.onnx"]
