"""`utils.atomic`: the old file survives a failed write, no temporary file is left behind, and a file another
library writes to a name (`atomic_path`) appears whole, with a plain mode, or not at all."""

from __future__ import annotations

import numpy as np
import pytest
from tiny_models import umask

from ner_imbalance.calibration import load_word_logits, save_word_logits
from ner_imbalance.utils.atomic import atomic_open, atomic_path, write_json_atomic


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = write_json_atomic(tmp_path / "results.json", {"f1": 0.5})
    with pytest.raises(RuntimeError, match="crash"):
        with atomic_open(path) as stream:
            stream.write('{"f1": ')
            raise RuntimeError("crash while writing")
    assert path.read_text(encoding="utf-8") == '{\n  "f1": 0.5\n}\n'
    assert sorted(item.name for item in tmp_path.iterdir()) == ["results.json"]


def test_binary_files_are_written_whole(tmp_path):
    path = tmp_path / "deep" / "logits.npz"
    save_word_logits(path, np.ones((3, 2)), [1, 2], ["O", "B-PER"])
    logits, lengths, labels = load_word_logits(path)
    assert logits.shape == (3, 2) and lengths.tolist() == [1, 2] and labels == ["O", "B-PER"]
    assert [item.name for item in path.parent.iterdir()] == ["logits.npz"]


def test_only_whole_file_modes_are_accepted(tmp_path):
    with pytest.raises(ValueError, match="mode must be 'w' or 'wb', got 'a'"):
        with atomic_open(tmp_path / "log.txt", "a"):
            pass


def test_the_written_file_is_moved_into_place_with_a_plain_mode(tmp_path):
    target = tmp_path / "sub" / "model.onnx"
    with umask(0o022):
        with atomic_path(target) as temporary:
            assert temporary.parent == target.parent and temporary != target
            temporary.write_bytes(b"graph")
            assert not target.exists()
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
