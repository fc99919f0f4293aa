"""The output-folder policy of a run: a run never destroys or mixes earlier results.

- No `--output_dir`: a new folder `outputs/<loss>-<timestamp>` (`claim_output_dir`).
- A non-empty output folder is refused (`check_output_dir`), unless the run resumes
  (`--resume_from_checkpoint`) or `--overwrite_output_dir` is given; then `clear_output_dir`
  deletes the old run's files before the run writes anything, so nothing stale remains.
- `--resume_from_checkpoint true|last` means the last complete `checkpoint-*` in the output folder
  (`resolve_checkpoint`, the one place that resolves it; `checkpoints.last_complete_checkpoint`).
- The folder's lock (`lock`) is not a file of the run: it is neither counted nor deleted here.

Every check raises `UsageError` with one line naming the folder and the flags that lead on.
"""

from __future__ import annotations

import os
import shutil
from datetime import datetime
from pathlib import Path

from ner_imbalance.config.arguments import RESUME_FROM_LAST
from ner_imbalance.errors import UsageError
from ner_imbalance.training.checkpoints import checkpoint_problem, last_complete_checkpoint
from ner_imbalance.training.lock import LOCK_FILE

TIMESTAMP_FORMAT = "%Y%m%d-%H%M%S"


def claim_output_dir(root: str | os.PathLike, loss: str, now: datetime | None = None) -> str:
    """Create and return a new folder `<root>/<loss>-<timestamp>` (`-2`, `-3`, ... if a run of the same
    second has one); creating it claims it, so two runs started together never share a folder."""
    stem = Path(root) / f"{loss}-{(now or datetime.now()).strftime(TIMESTAMP_FORMAT)}"
    candidate, number = stem, 1
    while True:
        try:
            candidate.mkdir(parents=True)
            return str(candidate)
        except FileExistsError:
            number += 1
            candidate = stem.with_name(f"{stem.name}-{number}")


def means_last_checkpoint(value: str | bool | None) -> bool:
    """Whether a `--resume_from_checkpoint` value names the last checkpoint of the output folder."""
    return value is True or (isinstance(value, str) and value.strip().lower() in RESUME_FROM_LAST)


def resolve_checkpoint(value: str | bool | None, output_dir: str) -> str | None:
    """The checkpoint folder `--resume_from_checkpoint` names, or None for no resume.

    `true`, `True`, `last` (or the bool True) name the last complete `checkpoint-*` of `output_dir`
    (newer incomplete ones are skipped, with a warning each); `false` and the empty string mean no
    resume; anything else is a checkpoint folder, refused if incomplete or damaged (naming the file).
    """
    if value is None or value is False or (isinstance(value, str) and value.strip().lower() in ("", "false")):
        return None
    if means_last_checkpoint(value):
        last = last_complete_checkpoint(output_dir)
        if last.path is None:
            skipped = f" ({last.skipped_in_words()})" if last.skipped else ""
            raise UsageError(
                f"--resume_from_checkpoint {value}: no complete checkpoint-* folder in {output_dir}{skipped}; "
                "give --output_dir of the run to continue, or a checkpoint folder"
            )
        return last.path
    problem = checkpoint_problem(value, require_marker=False)
    if problem is not None:
        raise UsageError(f"--resume_from_checkpoint {value}: cannot resume from it: {problem}")
    return str(value)


def check_output_dir(output_dir: str, *, resuming: bool, overwrite: bool) -> None:
    """Refuse a non-empty `output_dir` unless the run resumes or overwrites it; refuse to overwrite a parent of here."""
    folder = Path(output_dir)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"--output_dir {output_dir} is a file, not a folder")
    if not folder.is_dir() or not any(entry.name != LOCK_FILE for entry in folder.iterdir()):
        return
    if overwrite:
        here = Path.cwd().resolve()
        if folder.resolve() in (here, *here.parents, Path.home().resolve()):
            raise UsageError(
                f"--overwrite_output_dir would delete {output_dir}, which holds the current folder or home: "
                "give a run's own output folder"
            )
        return
    if not resuming:
        raise UsageError(
            f"output folder {output_dir} is not empty: pass --overwrite_output_dir to replace its contents, "
            "or --resume_from_checkpoint true to continue its run"
        )


def clear_output_dir(output_dir: str) -> None:
    """Delete everything inside `output_dir` but its lock (the folder itself stays)."""
    folder = Path(output_dir)
    if not folder.is_dir():
        return
    for entry in folder.iterdir():
        if entry.name == LOCK_FILE:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
