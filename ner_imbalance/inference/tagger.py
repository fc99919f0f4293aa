"""Tag new text with a model folder written by `scripts/train_ner.py`: one tag per word, and entities.

Inputs (`read_sentences`): raw text, one sentence or document per line, split into words by the
model tokenizer's own pre-tokenizer (`backend_tokenizer.pre_tokenizer.pre_tokenize_str`, with
character offsets); CoNLL-style column files (token first; tag columns may be there and are
ignored); JSON / JSON Lines records with `tokens`. Words then follow the path of evaluation:
`data.alignment.tokenize_and_align` cuts long sentences into overlapping windows and
`data.alignment.choose_word_positions` picks, for every word, the first sub-token of the window
it is predicted from, so each word gets exactly one tag, the one evaluation would give it.
Windows are run in length-sorted batches (longest first), in bf16 on CUDA by default.

    from ner_imbalance.predict import Tagger
    tagger = Tagger.from_folder("runs/wnut17_focal")
    for sentence in tagger.tag_text(["Empire State Building in New York"]):
        print(sentence.tags, [entity.as_dict() for entity in sentence.entities])
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import datasets
import numpy as np
import torch
from seqeval.metrics.sequence_labeling import get_entities
from tqdm.auto import tqdm
from transformers import (
    AutoModelForTokenClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from ner_imbalance.constants import MAX_SEQ_LENGTH, OUTSIDE, STRIDE
from ner_imbalance.data.alignment import choose_word_positions, tokenize_and_align
from ner_imbalance.data.conll import DataFormatError, column_values, read_column_sentences, read_text
from ner_imbalance.data.readers import TOKEN_COLUMN, read_json

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
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
_GENERIC_LABEL = re.compile(r"LABEL_\d+")


@dataclass
class Sentence:
    """Words to tag; for raw text also the line and each word's character offsets `[start, end)` in it."""

    tokens: list[str]
    text: str | None = None
    offsets: list[tuple[int, int]] | None = None


@dataclass
class Entity:
    """An entity over words `[start, end)`; `probability` is the mean of its words' tag probabilities.

    `char_start`/`char_end`: its characters `[char_start, char_end)` in the raw text line (None
    for pre-split words); `text`: those characters, or its words joined by spaces."""

    type: str
    start: int
    end: int
    text: str
    probability: float
    char_start: int | None = None
    char_end: int | None = None

    def as_dict(self) -> dict[str, Any]:
        record = asdict(self)
        if self.char_start is None:
            del record["char_start"], record["char_end"]
        return record


@dataclass
class TaggedSentence:
    """A sentence with one tag per word, the probability of each tag, and its entities."""

    tokens: list[str]
    tags: list[str]
    probabilities: list[float]
    entities: list[Entity] = field(default_factory=list)
    text: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The JSON Lines record: `tokens`, `tags`, `entities` (and `text` for raw text)."""
        record: dict[str, Any] = {} if self.text is None else {"text": self.text}
        record.update(tokens=self.tokens, tags=self.tags, entities=[entity.as_dict() for entity in self.entities])
        return record


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


def load_tokenizer(model_dir: str | os.PathLike) -> PreTrainedTokenizerBase:
    """The tokenizer of a folder written by `train_ner.py`, after checking that its config names
    NER tags (`id2label`); reads no model weights, so input can be checked before they load."""
    folder = Path(model_dir)
    config_path = folder / "config.json"
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such model folder")
    if not config_path.is_file():
        raise FileNotFoundError(f"{folder}: no config.json; give the output folder of train_ner.py")
    id2label = json.loads(config_path.read_text(encoding="utf-8")).get("id2label")
    labels = list(id2label.values()) if isinstance(id2label, dict) else []
    if not labels or all(_GENERIC_LABEL.fullmatch(label) for label in labels):
        raise ValueError(f"{config_path}: no id2label with the tags of the model; was it trained by train_ner.py?")
    not_tags = [label for label in labels if label != OUTSIDE and label[:2] not in ("B-", "I-", "E-", "S-")]
    if not_tags:
        raise ValueError(f"{config_path}: labels {not_tags[:3]} are not NER tags (O, B-X, I-X, E-X, S-X)")
    return AutoTokenizer.from_pretrained(folder)


def load_model_folder(model_dir: str | os.PathLike) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The model and tokenizer of a folder written by `train_ner.py` (checked by `load_tokenizer`)."""
    tokenizer = load_tokenizer(model_dir)
    return AutoModelForTokenClassification.from_pretrained(model_dir), tokenizer


class Tagger:
    """A token-classification model that tags words: batched, length-grouped, on CPU or GPU.

    Args:
        model, tokenizer: a model trained by `train_ner.py` and its (fast) tokenizer.
        device: "cpu", "cuda", "cuda:1", ...; default CUDA when available.
        dtype: "auto" (bf16 on CUDA where supported, float32 elsewhere), "float32" or "bfloat16".
        batch_size: windows per forward pass.
        max_seq_length, stride: the windows of long sentences, as in training (`--max_seq_length`,
            `--stride`); a word's tag comes from the window where it has most context.
    """

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        *,
        device: str | torch.device | None = None,
        dtype: str = "auto",
        batch_size: int = 32,
        max_seq_length: int = MAX_SEQ_LENGTH,
        stride: int = STRIDE,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {device!r}: CUDA is not available here; use --device cpu")
        if dtype == "auto":
            bf16 = self.device.type == "cuda" and torch.cuda.is_bf16_supported()
            dtype = "bfloat16" if bf16 else "float32"
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be auto or one of {', '.join(DTYPES)}, got {dtype!r}")
        self.model = model.to(device=self.device, dtype=DTYPES[dtype]).eval()
        self.tokenizer = tokenizer
        self.id2label = {int(index): label for index, label in model.config.id2label.items()}
        self.labels = np.asarray([self.id2label[index] for index in range(len(self.id2label))], dtype=object)
        self.batch_size = batch_size
        self.max_seq_length = max_seq_length
        self.stride = stride
        self.collator = DataCollatorWithPadding(
            tokenizer, pad_to_multiple_of=8 if self.device.type == "cuda" else None, return_tensors="pt"
        )

    @classmethod
    def from_folder(cls, model_dir: str | os.PathLike, **kwargs: Any) -> Tagger:
        """A tagger for a folder written by `train_ner.py` (see `load_model_folder`); `kwargs` as `Tagger`."""
        model, tokenizer = load_model_folder(model_dir)
        return cls(model, tokenizer, **kwargs)

    def word_probabilities(self, token_lists: Sequence[Sequence[str]], *, progress: bool = False) -> np.ndarray:
        """`[num_words, num_labels]` label probabilities of every word (sentences concatenated, input
        order): the softmax at the word's first sub-token in the window it is predicted from."""
        words = datasets.Dataset.from_dict({TOKEN_COLUMN: [list(tokens) for tokens in token_lists]})
        windows = tokenize_and_align(
            words,
            self.tokenizer,
            self.model.config.label2id,
            max_seq_length=self.max_seq_length,
            stride=self.stride,
        )
        num_words = [len(tokens) for tokens in token_lists]
        rows, positions = choose_word_positions(windows, num_words)
        inputs = windows.select_columns(
            [name for name in self.tokenizer.model_input_names if name in windows.column_names]
        )
        lengths = np.asarray(windows["length"])
        batches = np.array_split(np.argsort(-lengths, kind="stable"), max(1, -(-len(lengths) // self.batch_size)))
        batch_of_row = np.empty(len(lengths), dtype=np.int64)
        slot_in_batch = np.empty(len(lengths), dtype=np.int64)
        for number, batch in enumerate(batches):
            batch_of_row[batch] = number
            slot_in_batch[batch] = np.arange(len(batch))
        word_order = np.argsort(batch_of_row[rows], kind="stable")
        words_per_batch = np.split(word_order, np.cumsum(np.bincount(batch_of_row[rows], minlength=len(batches)))[:-1])
        probabilities = np.zeros((len(rows), len(self.labels)), dtype=np.float32)
        with torch.inference_mode():
            for batch, batch_words in zip(
                tqdm(batches, desc="tagging", unit="batch", disable=not progress), words_per_batch
            ):
                features = self.collator(inputs.select(batch).to_list())
                logits = self.model(**features.to(self.device)).logits
                slots = torch.as_tensor(slot_in_batch[rows[batch_words]], device=self.device)
                places = torch.as_tensor(positions[batch_words], device=self.device)
                probabilities[batch_words] = logits[slots, places].float().softmax(-1).cpu().numpy()
        return probabilities

    def tag(
        self, sentences: Sequence[Sentence] | Sequence[Sequence[str]], *, progress: bool = False
    ) -> list[TaggedSentence]:
        """Tag `Sentence`s or plain word lists: one tag per word, its probability, and the entities."""
        sentences = [sentence if isinstance(sentence, Sentence) else Sentence(list(sentence)) for sentence in sentences]
        probabilities = self.word_probabilities([sentence.tokens for sentence in sentences], progress=progress)
        label_ids = probabilities.argmax(-1)
        tag_probabilities = probabilities[np.arange(len(label_ids)), label_ids]
        tags = self.labels[label_ids].tolist()
        bounds = np.concatenate(([0], np.cumsum([len(sentence.tokens) for sentence in sentences])))
        tagged = []
        for number, sentence in enumerate(sentences):
            sentence_tags = tags[bounds[number] : bounds[number + 1]]
            sentence_probabilities = tag_probabilities[bounds[number] : bounds[number + 1]].tolist()
            tagged.append(
                TaggedSentence(
                    tokens=sentence.tokens,
                    tags=sentence_tags,
                    probabilities=sentence_probabilities,
                    entities=entities_of(sentence, sentence_tags, sentence_probabilities),
                    text=sentence.text,
                )
            )
        return tagged

    def tag_text(self, texts: Sequence[str], *, progress: bool = False) -> list[TaggedSentence]:
        """Tag raw texts, each split into words by the tokenizer's pre-tokenizer (`split_words`)."""
        return self.tag([text_sentence(text, self.tokenizer) for text in texts], progress=progress)


def entities_of(sentence: Sentence, tags: Sequence[str], probabilities: Sequence[float]) -> list[Entity]:
    """The entities of one tagged sentence, chunked as conlleval (and evaluation) chunk them."""
    entities = []
    for entity_type, first, last in get_entities(list(tags)):
        end = last + 1
        if sentence.offsets is not None:
            char_start, char_end = sentence.offsets[first][0], sentence.offsets[last][1]
            text = sentence.text[char_start:char_end]
        else:
            char_start = char_end = None
            text = " ".join(sentence.tokens[first:end])
        probability = float(np.mean(probabilities[first:end]))
        entities.append(Entity(entity_type, first, end, text, probability, char_start, char_end))
    return entities


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
