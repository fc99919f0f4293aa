"""Atomic file writes: a crash leaves either the whole new file or the old one, never half of one.

The file gets the permissions a plain `open` would give it (the existing file's mode, or 0666 less
the umask), not the 0600 of the temporary file it is written through.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w") -> Iterator[IO[Any]]:
    """Open a temporary file beside `path` (`mode` "w" for UTF-8 text, "wb" for bytes) and move it onto
    `path` with `os.replace` when the block ends; if the block raises, `path` is left as it was."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes whole files: mode must be 'w' or 'wb', got {mode!r}")
    with atomic_path(path) as temporary:
        with open(temporary, mode, **({"encoding": "utf-8", "newline": "\n"} if mode == "w" else {})) as stream:
            yield stream


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary file name beside `path` for a writer that takes a file name (`onnx.save`, an
    exporter): when the block ends the file there is moved onto `path` with `os.replace`, with the mode
    a plain `open` gives; if the block raises, the temporary file is removed and `path` left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        os.chmod(temporary, _mode_of_a_plain_open(path))
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def apply_umask_mode(folder: str | os.PathLike, pattern: str) -> None:
    """Give the files of `folder` matching `pattern` that another library wrote through a private temporary
    file (mode 0600: safetensors' writer does) the mode a plain `open` gives; other modes are left as they are."""
    plain = 0o666 & ~_umask()
    for path in Path(folder).glob(pattern):
        if path.is_file() and stat.S_IMODE(path.stat().st_mode) == 0o600:
            path.chmod(plain)


def _mode_of_a_plain_open(path: Path) -> int:
    """The permission bits `open(path, "w")` would leave: the existing file's, else 0666 less the umask."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return 0o666 & ~_umask()


def _umask() -> int:
    """The process umask, read from /proc where it can be (setting it to read it races other threads)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write `text` to `path` (UTF-8) through a temporary file in the same folder and `os.replace`."""
    with atomic_open(path) as stream:
        stream.write(text)
    return Path(path)


def write_json_atomic(path: str | os.PathLike, data: Any, *, sort_keys: bool = False) -> Path:
    """`data` as indented JSON (with a final newline), written atomically."""
    return write_text_atomic(path, json.dumps(data, indent=2, sort_keys=sort_keys) + "\n")
