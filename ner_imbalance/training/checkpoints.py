"""Checkpoints that are complete or absent, and the choice of the checkpoint to resume from.

The Trainer writes a checkpoint's files one by one into `checkpoint-<step>` (weights, optimizer,
scheduler, RNG states, `trainer_state.json`); a kill in between leaves a folder that looks like a
checkpoint but cannot be resumed from. `CompleteCheckpointMarker`, a callback every
`ImbalanceTrainer` has, writes `checkpoint_complete.json` once every process has written its files:
the name and size of every file of the checkpoint. A checkpoint is complete when that marker is
there and each file it lists has its size.

- `last_complete_checkpoint(folder)`: the newest complete `checkpoint-*` of a run's folder, and the
  newer ones it skipped with what is wrong with each.
- `checkpoint_problem(folder)`: what is wrong with one checkpoint, in words naming the file, or None.
"""

from __future__ import annotations

import json
import logging
import os
import re
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from ner_imbalance.utils.atomic import write_json_atomic

logger = logging.getLogger(__name__)

COMPLETE_MARKER = "checkpoint_complete.json"
TRAINER_STATE_FILE = "trainer_state.json"
_CHECKPOINT_NAME = re.compile(rf"^{PREFIX_CHECKPOINT_DIR}-(\d+)$")
_TORCH_FILE_SUFFIXES = (".pt", ".pth", ".bin")


def checkpoint_folder(args: TrainingArguments, state: TrainerState) -> Path:
    """The folder the Trainer saves the checkpoint of the current step in."""
    return Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"


def mark_complete(folder: str | os.PathLike) -> Path:
    """Write `folder`'s marker: every file under it (relative name -> size in bytes); written last, atomically."""
    folder = Path(folder)
    files = {
        path.relative_to(folder).as_posix(): path.stat().st_size
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != COMPLETE_MARKER
    }
    return write_json_atomic(folder / COMPLETE_MARKER, {"files": files})


def checkpoint_problem(folder: str | os.PathLike, *, require_marker: bool = True) -> str | None:
    """What is wrong with the checkpoint `folder`, naming the file; None if it can be resumed from.

    With its marker, every listed file must be there with its size. Without it the checkpoint is
    incomplete, unless `require_marker=False` (a folder the user names, perhaps written before
    markers existed): then it needs `trainer_state.json` (the Trainer writes it last) and every
    weights, optimizer and RNG file must be whole (a safetensors file as long as its header says,
    a torch file a readable zip archive).
    """
    folder = Path(folder)
    if not folder.is_dir():
        return f"{folder} is not a folder"
    marker = folder / COMPLETE_MARKER
    if marker.is_file():
        return _manifest_problem(folder, marker)
    if require_marker:
        return f"no {COMPLETE_MARKER}, so its save did not finish"
    if not (folder / TRAINER_STATE_FILE).is_file():
        return f"{folder / TRAINER_STATE_FILE} is missing: not a checkpoint, or one not completely written"
    for path in sorted(folder.iterdir()):
        problem = _file_problem(path)
        if problem:
            return problem
    return None


def _manifest_problem(folder: Path, marker: Path) -> str | None:
    try:
        files = json.loads(marker.read_text(encoding="utf-8"))["files"]
        expected = {str(name): int(size) for name, size in files.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return f"{marker} is damaged (not the JSON list of the checkpoint's files)"
    for name, size in expected.items():
        path = folder / name
        if not path.is_file():
            return f"{path} is missing"
        if path.stat().st_size != size:
            return f"{path} is damaged: {path.stat().st_size} bytes, {size} when it was saved"
    return None


def _file_problem(path: Path) -> str | None:
    """Whether a weights or torch file is cut short (the checks read its header or its end only)."""
    if path.suffix == ".safetensors":
        size = path.stat().st_size
        try:
            with path.open("rb") as stream:
                (header_length,) = struct.unpack("<Q", stream.read(8))
                header = json.loads(stream.read(header_length)) if 0 < header_length <= size - 8 else None
            end = max((entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__"), default=0)
        except (struct.error, ValueError, TypeError, KeyError, AttributeError, IndexError):
            return f"{path} is damaged (not a readable safetensors file)"
        if 8 + header_length + end > size:
            return f"{path} is damaged: {size} bytes, its header describes {8 + header_length + end}"
    elif path.suffix in _TORCH_FILE_SUFFIXES and not zipfile.is_zipfile(path):
        return f"{path} is damaged (not a complete torch file)"
    elif path.name == TRAINER_STATE_FILE:
        try:
            json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, ValueError):
            return f"{path} is damaged (not JSON)"
    return None


@dataclass(frozen=True)
class LastCheckpoint:
    """The newest complete checkpoint of a folder (None if none is), and the newer ones skipped."""

    path: str | None
    skipped: dict[str, str] = field(default_factory=dict)
    """checkpoint folder -> what is wrong with it, newest first."""

    def skipped_in_words(self) -> str:
        """`skipped checkpoint-10: <what is wrong>`, one clause per skipped checkpoint; '' if none was."""
        return "; ".join(f"skipped {Path(path).name}: {problem}" for path, problem in self.skipped.items())


def last_complete_checkpoint(folder: str | os.PathLike) -> LastCheckpoint:
    """The `checkpoint-<step>` of `folder` with the highest step that is complete, skipping newer incomplete ones.

    When one is found, each skipped checkpoint is logged as a warning and the choice as info.
    """
    folder = Path(folder)
    steps = {}
    if folder.is_dir():
        for entry in folder.iterdir():
            match = _CHECKPOINT_NAME.match(entry.name)
            if match and entry.is_dir():
                steps[entry] = int(match.group(1))
    skipped: dict[str, str] = {}
    for path in sorted(steps, key=steps.__getitem__, reverse=True):
        problem = checkpoint_problem(path)
        if problem is None:
            for skipped_path, why in skipped.items():
                logger.warning("not resuming from %s: %s", skipped_path, why)
            logger.info("resuming from %s", path)
            return LastCheckpoint(str(path), skipped)
        skipped[str(path)] = problem
    return LastCheckpoint(None, skipped)


class CompleteCheckpointMarker(TrainerCallback):
    """Marks every checkpoint the Trainer saves complete, once all processes have written their files."""

    def on_save(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> TrainerControl:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.barrier()  # every process's RNG state and shards are on disk
        folder = checkpoint_folder(args, state)
        if args.should_save and folder.is_dir():  # a search trial's checkpoints are elsewhere
            mark_complete(folder)
        return control
