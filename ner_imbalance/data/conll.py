"""Text files and their CoNLL-style column format: the layer below every reader and evaluator.

`read_text` decodes a file (UTF-8, BOM and CRLF handled) and `DataFormatError` names the file
and line of any problem. A column file has one token per line with whitespace- or TAB-separated
columns (token first, tags after) and a blank line between sentences: `read_column_sentences`
gives its sentences with their line numbers, `check_columns` checks the tag columns a caller
needs, `column_values` picks one column. `readers.read_conll` builds a training corpus on top of
these; `evaluation` reads prediction files and `predict` reads tokens-only input with them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ner_imbalance.tags import is_tag

DOCSTART = "-DOCSTART-"


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


def read_text(path: str | os.PathLike) -> str:
    """The file's text: UTF-8 (a leading BOM dropped), CRLF line ends turned into LF.

    Raises `FileNotFoundError` for a missing file and `DataFormatError` for bytes that are not
    UTF-8 (naming the line) or a file with nothing but whitespace.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise DataFormatError(
            path,
            f"not UTF-8 (byte 0x{raw[error.start]:02x} at offset {error.start}); re-encode the file as UTF-8",
            line,
        ) from None
    if not text.strip():
        raise DataFormatError(path, "the file is empty")
    return text.replace("\r\n", "\n")


def split_columns(line: str) -> list[str]:
    """Columns of one token line: split by TAB when the line has one, else by whitespace."""
    if "\t" in line:
        return [column.strip() for column in line.split("\t")]
    return line.split()


def read_column_sentences(path: str | os.PathLike) -> list[ColumnSentence]:
    """Sentences of a CoNLL-style file.

    Any whitespace-only line (empty, or a lone TAB as in WNUT 2017 train) ends a sentence;
    `-DOCSTART-` lines are skipped and end the sentence before them.
    """
    sentences: list[ColumnSentence] = []
    rows: list[list[str]] = []
    lines: list[int] = []
    for number, line in enumerate(read_text(path).split("\n"), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith(DOCSTART):
            if rows:
                sentences.append(ColumnSentence(rows, lines))
                rows, lines = [], []
            continue
        columns = split_columns(line)
        if not columns[0]:
            raise DataFormatError(path, f"empty token column in {line!r}", number)
        rows.append(columns)
        lines.append(number)
    if rows:
        sentences.append(ColumnSentence(rows, lines))
    if not sentences:
        raise DataFormatError(path, "no sentences (only blank or -DOCSTART- lines)")
    return sentences


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
