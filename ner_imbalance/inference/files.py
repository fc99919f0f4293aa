"""Input files to tag and output files of tags: raw text, CoNLL columns, JSON / JSON Lines, HTML.

Raw text is one sentence or document per line, split into words by the model tokenizer's own
pre-tokenizer (`split_words`, with character offsets); CoNLL-style column files give the token
first (tag columns may be there and are ignored); JSON / JSON Lines records give `tokens`, and
their other fields (an `id`, ...) are written back beside the tags. Outputs are `token<TAB>tag`
columns, one JSON record per sentence, or an HTML page (`html`).

`iter_sentences` reads a file lazily (all but a `.json` list, which is parsed whole) and keeps
the blank lines of raw text and JSON Lines as empty sentences, so output records line up with
input lines; `tag_chunks` tags such a stream `CHUNK_SENTENCES` sentences at a time, so memory does
not grow with the file. `read_sentences` is the whole file as a list, sentences with words only.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO

from transformers import PreTrainedTokenizerBase

from ner_imbalance.data.conll import DOCSTART, DataFormatError, split_columns
from ner_imbalance.data.readers import TOKEN_COLUMN
from ner_imbalance.inference.html import write_html
from ner_imbalance.inference.sentences import Sentence, SentenceTagger, TaggedSentence

INPUT_FORMATS = ("text", "conll", "json", "jsonl")


OUTPUT_FORMATS = ("conll", "jsonl", "html")


CHUNK_SENTENCES = 2048
"""Sentences read, tagged and written at a time by `tag_chunks` (length grouping happens within a chunk)."""

RECORD_KEYS = ("text", "tokens", "tags", "entities")
"""The keys an output record writes: input fields of these names are not passed through."""


EXTENSION_FORMATS = {
    ".txt": "text",
    ".conll": "conll",
    ".tsv": "conll",
    ".bio": "conll",
    ".iob": "conll",
    ".json": "json",
    ".jsonl": "jsonl",
}


OUTPUT_EXTENSIONS = {".jsonl": "jsonl", ".json": "jsonl", ".html": "html", ".htm": "html"}
"""Output formats chosen by the output's extension; any other extension (or stdout) writes CoNLL."""


def output_format_of(path: str, output_format: str | None = None) -> str:
    """`output_format` when given, else from the extension of `path` (`OUTPUT_EXTENSIONS`, default conll)."""
    if output_format is not None:
        if output_format not in OUTPUT_FORMATS:
            raise ValueError(f"output format must be one of {', '.join(OUTPUT_FORMATS)}, got {output_format!r}")
        return output_format
    return OUTPUT_EXTENSIONS.get(Path(path).suffix.lower(), "conll")


def input_format_of(path: str | os.PathLike, input_format: str | None = None) -> str:
    """`input_format` when given, else the format the file's extension names (see `EXTENSION_FORMATS`)."""
    if input_format is not None:
        if input_format not in INPUT_FORMATS:
            raise ValueError(f"input format must be one of {', '.join(INPUT_FORMATS)}, got {input_format!r}")
        return input_format
    suffix = Path(path).suffix.lower()
    if suffix not in EXTENSION_FORMATS:
        raise ValueError(
            f"{path}: cannot tell the format from the extension {suffix or '(none)'!r}: "
            f"pass --input_format {{{','.join(INPUT_FORMATS)}}}"
        )
    return EXTENSION_FORMATS[suffix]


def split_words(text: str, tokenizer: PreTrainedTokenizerBase) -> tuple[list[str], list[tuple[int, int]]]:
    """The words of `text` as the tokenizer's own pre-tokenizer splits it, and their character offsets.

    Each word is the original text between its offsets, without surrounding whitespace (byte-level
    and SentencePiece pre-tokenizers count the space before a word as part of it)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    pre_tokenizer = getattr(backend, "pre_tokenizer", None)
    if pre_tokenizer is None:
        raise ValueError(
            f"{type(tokenizer).__name__} has no pre-tokenizer to split raw text into words: give CoNLL or JSON words"
        )
    words, offsets = [], []
    for _, (start, end) in pre_tokenizer.pre_tokenize_str(text):
        piece = text[start:end]
        stripped = piece.strip()
        if stripped:
            start += len(piece) - len(piece.lstrip())
            words.append(stripped)
            offsets.append((start, start + len(stripped)))
    return words, offsets


def text_sentence(text: str, tokenizer: PreTrainedTokenizerBase) -> Sentence:
    """A raw text as a `Sentence`: its words (`split_words`), the text and the words' offsets."""
    words, offsets = split_words(text, tokenizer)
    return Sentence(words, text=text, offsets=offsets)


def read_sentences(
    path: str | os.PathLike, input_format: str | None = None, tokenizer: PreTrainedTokenizerBase | None = None
) -> list[Sentence]:
    """The sentences with words of an input file (`iter_sentences`; blank lines dropped), as a list."""
    return [sentence for sentence in iter_sentences(path, input_format, tokenizer) if sentence.tokens]


def iter_sentences(
    path: str | os.PathLike, input_format: str | None = None, tokenizer: PreTrainedTokenizerBase | None = None
) -> Iterator[Sentence]:
    """The sentences of an input file, read lazily (format from `input_format_of`); raw text needs `tokenizer`.

    Raw text: every line is one sentence; JSON Lines: every line one record. Their blank lines
    are empty sentences (no words), so that outputs line up with input lines. CoNLL: blank and
    `-DOCSTART-` lines end a sentence. Raises `FileNotFoundError` for a missing file, and
    `DataFormatError` naming the file (and line) for bytes that are not UTF-8, a bad record, an
    empty file, or, once the file is read, one without a single word.
    """
    input_format = input_format_of(path, input_format)
    if input_format == "text" and tokenizer is None:
        raise ValueError("raw text input needs the model's tokenizer to split it into words")
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if input_format == "text":
        sentences = _text_sentences(path, tokenizer)
    else:
        sentences = {"conll": _conll_sentences, "jsonl": _jsonl_sentences, "json": _json_sentences}[input_format](path)
    return _with_words(sentences, path)


def _with_words(sentences: Iterator[Sentence], path: str | os.PathLike) -> Iterator[Sentence]:
    """`sentences`, then `DataFormatError` if not one of them had a word."""
    has_words = False
    for sentence in sentences:
        has_words = has_words or bool(sentence.tokens)
        yield sentence
    if not has_words:
        raise DataFormatError(path, "no words to tag")


def _numbered_lines(path: str | os.PathLike) -> Iterator[tuple[int, str]]:
    """(line number, line without its end) of a UTF-8 file, read lazily; split on LF only (CRLF
    handled, a leading BOM dropped); `DataFormatError` for a file with nothing but whitespace."""
    has_text = False
    with open(path, "rb") as handle:
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


def _text_sentences(path: str | os.PathLike, tokenizer: PreTrainedTokenizerBase) -> Iterator[Sentence]:
    for _, line in _numbered_lines(path):
        yield text_sentence(line, tokenizer)


def _conll_sentences(path: str | os.PathLike) -> Iterator[Sentence]:
    """Sentences of a CoNLL-style file as `data.conll.read_column_sentences` finds them, read lazily."""
    tokens: list[str] = []
    found = False
    for number, line in _numbered_lines(path):
        stripped = line.strip()
        if not stripped or stripped.startswith(DOCSTART):
            if tokens:
                found = True
                yield Sentence(tokens)
                tokens = []
            continue
        columns = split_columns(line)
        if not columns[0]:
            raise DataFormatError(path, f"empty token column in {line!r}", number)
        tokens.append(columns[0])
    if tokens:
        yield Sentence(tokens)
    elif not found:
        raise DataFormatError(path, "no sentences (only blank or -DOCSTART- lines)")


def _jsonl_sentences(path: str | os.PathLike) -> Iterator[Sentence]:
    for number, line in _numbered_lines(path):
        yield _record_sentence(_parse_json(line, path, number), path, number, "") if line.strip() else Sentence([])


def _json_sentences(path: str | os.PathLike) -> Iterator[Sentence]:
    """A `.json` list of records (or `{"data": [records]}`): parsed whole, JSON has no record boundaries."""
    text = "\n".join(line for _, line in _numbered_lines(path))
    document = _parse_json(text, path, None)
    if isinstance(document, Mapping) and "data" in document:
        document = document["data"]
    if not isinstance(document, list):
        raise DataFormatError(path, 'expected a list of records or {"data": [records]}')
    for number, record in enumerate(document, start=1):
        yield _record_sentence(record, path, None, f"record {number}: ")


def _parse_json(text: str, path: str | os.PathLike, line: int | None) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise DataFormatError(path, f"invalid JSON: {error.msg}", line if line is not None else error.lineno) from None


def _record_sentence(record: object, path: str | os.PathLike, line: int | None, where: str) -> Sentence:
    """A JSON record's words, and its other fields (but those an output record writes) to pass through."""
    if not isinstance(record, Mapping) or TOKEN_COLUMN not in record:
        raise DataFormatError(path, f"{where}record without '{TOKEN_COLUMN}'", line)
    words = record[TOKEN_COLUMN]
    if not isinstance(words, list) or not all(isinstance(word, str) and word for word in words):
        raise DataFormatError(path, f"{where}'{TOKEN_COLUMN}' must be a list of non-empty strings", line)
    fields = {key: value for key, value in record.items() if key not in RECORD_KEYS}
    return Sentence(list(words), fields=fields or None)


def tag_chunks(
    tagger: SentenceTagger, sentences: Iterable[Sentence], chunk_size: int = CHUNK_SENTENCES
) -> Iterator[list[TaggedSentence]]:
    """Tag `sentences` `chunk_size` at a time, each chunk's tagged sentences yielded before the next
    chunk is read (length grouping happens within a chunk); input fields carried over."""
    if chunk_size < 1:
        raise ValueError(f"chunk size must be at least 1, got {chunk_size}")
    iterator = iter(sentences)
    while chunk := list(itertools.islice(iterator, chunk_size)):
        if any(sentence.tokens for sentence in chunk):
            tagged = tagger.tag(chunk)
        else:
            tagged = [TaggedSentence([], [], [], text=sentence.text) for sentence in chunk]
        yield [dataclasses.replace(out, fields=sentence.fields) for out, sentence in zip(tagged, chunk)]


def check_writable_tokens(sentences: Sequence[Sentence]) -> None:
    """Raise unless every token can go into a `token<TAB>tag` line (no TAB, no line break)."""
    for number, sentence in enumerate(sentences, start=1):
        for token in sentence.tokens:
            if "\t" in token or "\n" in token or "\r" in token:
                raise ValueError(
                    f"sentence {number}: token {token!r} cannot be written to a CoNLL file: use JSONL output"
                )


def write_conll(sentences: Sequence[TaggedSentence], handle: IO[str]) -> None:
    """`token<TAB>tag` per word, a blank line after every sentence that has words."""
    for sentence in sentences:
        if sentence.tokens:
            handle.write("".join(f"{token}\t{tag}\n" for token, tag in zip(sentence.tokens, sentence.tags)) + "\n")


def write_jsonl(sentences: Sequence[TaggedSentence], handle: IO[str]) -> None:
    """One JSON record per sentence (`TaggedSentence.as_dict`)."""
    for sentence in sentences:
        handle.write(json.dumps(sentence.as_dict(), ensure_ascii=False) + "\n")


WRITERS = {"conll": write_conll, "jsonl": write_jsonl, "html": write_html}
"""Writers of a chunk of tagged sentences; an HTML page also needs `html.html_page_start` and `HTML_PAGE_END`."""
