"""Input files to tag and output files of tags: raw text, CoNLL columns, JSON / JSON Lines.

Raw text is one sentence or document per line, split into words by the model tokenizer's own
pre-tokenizer (`split_words`, with character offsets); CoNLL-style column files give the token
first (tag columns may be there and are ignored); JSON / JSON Lines records give `tokens`.
Outputs are `token<TAB>tag` columns or one JSON record per sentence.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from transformers import PreTrainedTokenizerBase

from ner_imbalance.data.conll import DataFormatError, column_values, read_column_sentences, read_text
from ner_imbalance.data.readers import TOKEN_COLUMN, read_json
from ner_imbalance.inference.sentences import Sentence, TaggedSentence

INPUT_FORMATS = ("text", "conll", "json", "jsonl")


OUTPUT_FORMATS = ("conll", "jsonl")


EXTENSION_FORMATS = {
    ".txt": "text",
    ".conll": "conll",
    ".tsv": "conll",
    ".bio": "conll",
    ".iob": "conll",
    ".json": "json",
    ".jsonl": "jsonl",
}


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
    """The sentences of an input file (format from `input_format_of`); raw text needs `tokenizer`.

    Raw text: every non-blank line is one sentence. Raises `FileNotFoundError` for a missing file
    and `DataFormatError` naming the file for an empty one or one without a single word.
    """
    input_format = input_format_of(path, input_format)
    if input_format == "text":
        if tokenizer is None:
            raise ValueError("raw text input needs the model's tokenizer to split it into words")
        sentences = [text_sentence(line, tokenizer) for line in read_text(path).split("\n") if line.strip()]
    elif input_format == "conll":
        sentences = [Sentence(tokens) for tokens in column_values(read_column_sentences(path), 0)]
    else:
        sentences = [Sentence(list(tokens)) for tokens in read_json(path, read_tags=False)[TOKEN_COLUMN]]
    if not any(sentence.tokens for sentence in sentences):
        raise DataFormatError(path, "no words to tag")
    return sentences


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


WRITERS = {"conll": write_conll, "jsonl": write_jsonl}
