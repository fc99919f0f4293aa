"""Text files and their CoNLL-style column format: the layer below every reader and evaluator.

`numbered_lines` reads a file (or standard input, `-`) lazily, one decoded line at a time (UTF-8,
BOM and CRLF handled), and `read_text` is the whole file; `DataFormatError` names the file and
line of any problem. A column file has one token per line with whitespace- or TAB-separated
columns (token first, tags after) and a blank line between sentences: `iter_column_sentences`
streams its sentences with their line numbers (`read_column_sentences`: all of them),
`check_columns` checks the tag columns a caller needs, `column_values` picks one column.
`readers.read_conll` builds a training corpus on top of these; `evaluation` reads prediction files
and `inference` streams tokens-only input with them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ner_imbalance.tags import is_tag

DOCSTART = "-DOCSTART-"

STANDARD_STREAM = "-"
"""The path that means standard input (to read) or standard output (to write)."""


class DataFormatError(ValueError):
    """Malformed input; the message names the file and, where there is one, the line number."""

    def __init__(self, path: str | os.PathLike, message: str, line: int | None = None) -> None:
        where = f"{path}, line {line}" if line is not None else f"{path}"
        super().__init__(f"{where}: {message}")
        self.path = str(path)
        self.line = line
        self.message = message

    def __reduce__(self):
        return type(self), (self.path, self.message, self.line)


@dataclass(frozen=True)
class ColumnSentence:
    """One sentence of a column file: the split columns of each token line and its line number."""

    rows: list[list[str]]
    lines: list[int]


def numbered_lines(path: str | os.PathLike) -> Iterator[tuple[int, str]]:
    """(line number, line without its end) of a UTF-8 file, or of standard input for `-`, read lazily.

    Split on LF only (a CRLF end loses its CR), a leading BOM dropped. Raises `FileNotFoundError`
    for a missing file and `DataFormatError` for bytes that are not UTF-8 (naming the line) or, once
    read, a file with nothing but whitespace.
    """
    stdin = str(path) == STANDARD_STREAM
    if not stdin and not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such file")
    has_text = False
    with open(sys.stdin.fileno(), "rb", closefd=False) if stdin else open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as error:
                raise DataFormatError(
                    path, f"not UTF-8 (byte 0x{raw[error.start]:02x}); re-encode the file as UTF-8", number
                ) from None
            line = line.removesuffix("\n").removesuffix("\r")
            has_text = has_text or bool(line.strip())
            yield number, line
    if not has_text:
        raise DataFormatError(path, "the file is empty")


def read_text(path: str | os.PathLike) -> str:
    """The whole file (`numbered_lines`, with its checks) as one text with LF line ends."""
    return "\n".join(line for _, line in numbered_lines(path))


def split_columns(line: str) -> list[str]:
    """Columns of one token line: split by TAB when the line has one, else by whitespace."""
    if "\t" in line:
        return [column.strip() for column in line.split("\t")]
    return line.split()


def iter_column_sentences(path: str | os.PathLike) -> Iterator[ColumnSentence]:
    """The sentences of a CoNLL-style file (or `-`, standard input), read lazily.

    Any whitespace-only line (empty, or a lone TAB as in WNUT 2017 train) ends a sentence;
    `-DOCSTART-` lines are skipped and end the sentence before them. Raises `DataFormatError` for a
    line with an empty token column and, once read, for a file without a sentence.
    """
    rows: list[list[str]] = []
    lines: list[int] = []
    found = False
    for number, line in numbered_lines(path):
        stripped = line.strip()
        if not stripped or stripped.startswith(DOCSTART):
            if rows:
                found = True
                yield ColumnSentence(rows, lines)
                rows, lines = [], []
            continue
        columns = split_columns(line)
        if not columns[0]:
            raise DataFormatError(path, f"empty token column in {line!r}", number)
        rows.append(columns)
        lines.append(number)
    if rows:
        yield ColumnSentence(rows, lines)
    elif not found:
        raise DataFormatError(path, "no sentences (only blank or -DOCSTART- lines)")


def read_column_sentences(path: str | os.PathLike) -> list[ColumnSentence]:
    """All sentences of a CoNLL-style file (`iter_column_sentences`)."""
    return list(iter_column_sentences(path))


def check_tag(tag: str, path: str | os.PathLike, line: int | None) -> None:
    """Raise unless `tag` is `O` or `<B|I|E|S>-<type>` (`tags.is_tag`)."""
    if not is_tag(tag):
        raise DataFormatError(path, f"tag {tag!r} is neither 'O' nor B-/I-/E-/S-<type>", line)


def check_columns(path: str | os.PathLike, sentences: Sequence[ColumnSentence], *, tag_columns: Sequence[int]) -> None:
    """Raise unless every token line has a token and valid tags in `tag_columns` (negative indices)."""
    needed = 1 + len(tag_columns)
    for sentence in sentences:
        for columns, line in zip(sentence.rows, sentence.lines):
            if len(columns) < needed:
                raise DataFormatError(
                    path,
                    f"{len(columns)} column(s) ({' '.join(columns)!r}) "
                    f"where a token and {needed - 1} tag(s) are needed",
                    line,
                )
            for index in tag_columns:
                check_tag(columns[index], path, line)


def column_values(sentences: Sequence[ColumnSentence], index: int) -> list[list[str]]:
    """Column `index` of every token line, one list per sentence."""
    return [[columns[index] for columns in sentence.rows] for sentence in sentences]
