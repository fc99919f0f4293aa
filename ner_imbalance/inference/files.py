"""Input files to tag and output files of tags: raw text, CoNLL columns, JSON / JSON Lines, HTML.

Raw text is one sentence or document per line, split into words by the model tokenizer's own
pre-tokenizer (`split_words`, with character offsets); CoNLL-style column files give the token
first (tag columns may be there and are ignored); JSON / JSON Lines records give `tokens`, and
their other fields (an `id`, ...) are written back beside the tags. Outputs are `token<TAB>tag`
columns, one JSON record per sentence, or an HTML page (`html`).

`iter_sentences` reads a file, or standard input for `-` (`STANDARD_STREAM`), lazily (all but a `.json`
list, which is parsed whole) and keeps
the blank lines of raw text and JSON Lines as empty sentences, so output records line up with
input lines; `tag_chunks` tags such a stream `CHUNK_SENTENCES` sentences at a time, so memory does
not grow with the file. `read_sentences` is the whole file as a list, sentences with words only.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO

from transformers import PreTrainedTokenizerBase

from ner_imbalance.data.conll import STANDARD_STREAM, DataFormatError, iter_column_sentences, numbered_lines
from ner_imbalance.data.readers import iter_json_records, record_tokens
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
    if str(path) == STANDARD_STREAM:
        return "text"
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
    if str(path) != STANDARD_STREAM and not Path(path).is_file():  # before the first sentence is asked for
        raise FileNotFoundError(f"{path}: no such file")
    if input_format == "text":
        sentences = _text_sentences(path, tokenizer)
    elif input_format == "conll":
        sentences = _conll_sentences(path)
    else:
        sentences = _json_sentences(path, json_lines=input_format == "jsonl")
    return _with_words(sentences, path)


def _with_words(sentences: Iterator[Sentence], path: str | os.PathLike) -> Iterator[Sentence]:
    """`sentences`, then `DataFormatError` if not one of them had a word."""
    has_words = False
    for sentence in sentences:
        has_words = has_words or bool(sentence.tokens)
        yield sentence
    if not has_words:
        raise DataFormatError(path, "no words to tag")


def _text_sentences(path: str | os.PathLike, tokenizer: PreTrainedTokenizerBase) -> Iterator[Sentence]:
    for _, line in numbered_lines(path):
        yield text_sentence(line, tokenizer)


def _conll_sentences(path: str | os.PathLike) -> Iterator[Sentence]:
    for sentence in iter_column_sentences(path):
        yield Sentence([columns[0] for columns in sentence.rows])


def _json_sentences(path: str | os.PathLike, json_lines: bool) -> Iterator[Sentence]:
    """JSON (Lines) records as sentences: their words, and their other fields (but those an output record
    writes) to pass through; a blank JSON Lines line is an empty sentence."""
    for record, line, where in iter_json_records(path, json_lines=json_lines, keep_blank_lines=True):
        if record is None:
            yield Sentence([])
            continue
        words = record_tokens(record, path, line, where)
        fields = {key: value for key, value in record.items() if key not in RECORD_KEYS}
        yield Sentence(words, fields=fields or None)


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
