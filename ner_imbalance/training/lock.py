"""The lock of a run on its output folder: two runs never write into, or delete, the same folder at once.

The lock is the file `.ner_imbalance.lock` in the output folder, naming the host, the process id
and the start time of the run holding it. It is created whole (written aside, then hard-linked
into place, which fails if a lock is already there) and removed when the run ends; a run killed
without cleanup leaves it behind:

- held by this process: the lock is ours (a second run in the same process takes it again);
- held by a dead process of this host: stale, taken over;
- held by a live process of this host, or by any process of another host (whose processes cannot
  be seen from here): refused with a `UsageError` naming the holder and how to remove the lock.
"""

from __future__ import annotations

import atexit
import json
import os
import socket
import sys
import tempfile
from datetime import datetime
from pathlib import Path

from ner_imbalance.errors import UsageError

LOCK_FILE = ".ner_imbalance.lock"


def lock_path(output_dir: str | os.PathLike) -> Path:
    """The lock file of `output_dir`."""
    return Path(output_dir) / LOCK_FILE


def check_output_lock(output_dir: str | os.PathLike) -> None:
    """Refuse (`UsageError`, one line) an output folder another live run holds; writes nothing."""
    holder = _read_holder(lock_path(output_dir))
    if holder is not None:
        _refuse_unless_ours_or_stale(output_dir, holder)


def take_output_lock(output_dir: str | os.PathLike) -> Path:
    """Lock `output_dir` for this process until `release_output_lock` or the process ends.

    Call it before deleting or writing anything in the folder. Refuses (`UsageError`) a folder a
    live run holds; takes over a stale lock.
    """
    path = lock_path(output_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    mine = {"host": socket.gethostname(), "pid": os.getpid(), "started": datetime.now().isoformat(timespec="seconds")}
    mine["command"] = " ".join(sys.argv)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f"{LOCK_FILE}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(mine, stream)
        os.chmod(temporary, 0o644)
        try:
            os.link(temporary, path)  # atomic, and fails if a lock is there
        except FileExistsError:
            holder = _read_holder(path)
            if holder is not None:
                _refuse_unless_ours_or_stale(output_dir, holder)
            os.replace(temporary, path)  # ours again, or stale: taken over
            if _read_holder(path) != mine:  # another run took it over at the same moment
                check_output_lock(output_dir)
    finally:
        Path(temporary).unlink(missing_ok=True)
    atexit.register(release_output_lock, output_dir)
    return path


def release_output_lock(output_dir: str | os.PathLike) -> None:
    """Remove `output_dir`'s lock if this process holds it."""
    path = lock_path(output_dir)
    holder = _read_holder(path)
    if holder is not None and _is_this_process(holder):
        path.unlink(missing_ok=True)


def _read_holder(path: Path) -> dict | None:
    """The lock's content; None without a lock; `{}` for a lock that is not ours to read (damaged)."""
    try:
        holder = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}


def _is_this_process(holder: dict) -> bool:
    return holder.get("host") == socket.gethostname() and holder.get("pid") == os.getpid()


def _refuse_unless_ours_or_stale(output_dir: str | os.PathLike, holder: dict) -> None:
    path = lock_path(output_dir)
    host, pid, started = holder.get("host"), holder.get("pid"), holder.get("started", "?")
    if not isinstance(host, str) or not isinstance(pid, int):
        raise UsageError(f"output folder {output_dir} has a damaged lock {path}: if no run uses the folder, delete it")
    if host != socket.gethostname():
        raise UsageError(
            f"output folder {output_dir} is locked by process {pid} on host {host} (since {started}): "
            f"if that run has ended, delete {path}; else choose another --output_dir"
        )
    if pid != os.getpid() and _is_alive(pid):
        raise UsageError(
            f"output folder {output_dir} is in use by a run still going (process {pid} on this host, since {started}): "
            "wait for it to end or choose another --output_dir"
        )


def _is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
