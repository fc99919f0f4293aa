"""Tag new text with a model folder written by `scripts/train_ner.py`: one tag per word, and entities.

Words (from `files.read_sentences`, or given) follow the path of evaluation:
`data.alignment.tokenize_and_align` cuts long sentences into overlapping windows and
`data.alignment.choose_word_positions` picks, for every word, the first sub-token of the window
it is predicted from, so each word gets exactly one tag, the one evaluation would give it.
Windows are run in length-sorted batches (longest first), in bf16 on CUDA by default.

    from ner_imbalance.inference import Tagger
    tagger = Tagger.from_folder("runs/wnut17_focal")
    for sentence in tagger.tag_text(["Empire State Building in New York"]):
        print(sentence.tags, [entity.as_dict() for entity in sentence.entities])

`tagging_windows` (the windows and each word's window) and `WordDecoder` (word probabilities -> tags
and entities) are shared with `pipeline.NerPipeline`, which runs the same steps inside `transformers.pipeline`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import datasets
import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import (
    AutoModelForTokenClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from ner_imbalance.constants import (
    ARGMAX,
    DECODING_CONFIG_KEY,
    DECODING_METHODS,
    MAX_SEQ_LENGTH,
    STRIDE,
    TAG_SCHEME_CONFIG_KEY,
)
from ner_imbalance.data.alignment import choose_word_positions, tokenize_and_align
from ner_imbalance.data.readers import TOKEN_COLUMN
from ner_imbalance.decoding import decode
from ner_imbalance.errors import UsageError
from ner_imbalance.inference.ensemble import LogProbabilityEnsemble
from ner_imbalance.inference.files import text_sentence
from ner_imbalance.inference.sentences import Sentence, TaggedSentence, entities_of
from ner_imbalance.tags import detect_scheme, is_tag

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
_GENERIC_LABEL = re.compile(r"LABEL_\d+")


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
    not_tags = [label for label in labels if not is_tag(label)]
    if not_tags:
        raise ValueError(f"{config_path}: labels {not_tags[:3]} are not NER tags (O, B-X, I-X, E-X, S-X)")
    return AutoTokenizer.from_pretrained(folder)


def load_model_folder(model_dir: str | os.PathLike) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The model and tokenizer of a folder written by `train_ner.py` (checked by `load_tokenizer`)."""
    tokenizer = load_tokenizer(model_dir)
    return AutoModelForTokenClassification.from_pretrained(model_dir), tokenizer


def load_ensemble(
    model_dirs: Sequence[str | os.PathLike], **model_kwargs: Any
) -> tuple[LogProbabilityEnsemble, PreTrainedTokenizerBase]:
    """The models of `model_dirs` (folders written by `train_ner.py`, each checked by `load_tokenizer`) as one
    `LogProbabilityEnsemble`, and the first folder's tokenizer; `model_kwargs` go to `from_pretrained`.

    `UsageError` naming both folders for a folder of another label set or tokenizer vocabulary."""
    if not model_dirs:
        raise ValueError("an ensemble needs at least one model folder")
    tokenizers = [load_tokenizer(model_dir) for model_dir in model_dirs]
    for model_dir, tokenizer in zip(model_dirs[1:], tokenizers[1:]):
        if tokenizer.get_vocab() != tokenizers[0].get_vocab():
            raise UsageError(
                f"{model_dir}: its tokenizer's vocabulary is not that of {model_dirs[0]}; "
                "an ensemble runs every model on the first folder's windows"
            )
    models = [AutoModelForTokenClassification.from_pretrained(model_dir, **model_kwargs) for model_dir in model_dirs]
    return LogProbabilityEnsemble(models, model_dirs), tokenizers[0]


class TaggingWindows(NamedTuple):
    """The windows of sentences to tag (`tagging_windows`) and, per word, the window it is predicted from."""

    inputs: datasets.Dataset
    """One row per window: the tokenizer's model inputs (`input_ids`, `attention_mask`, ...)."""
    lengths: np.ndarray
    """Sub-tokens per window."""
    rows: np.ndarray
    """Per word (sentences concatenated, input order): the row of its window in `inputs`."""
    positions: np.ndarray
    """Per word: the position of its first sub-token in that window."""


def tagging_windows(
    token_lists: Sequence[Sequence[str]],
    tokenizer: PreTrainedTokenizerBase,
    label2id: dict[str, int],
    *,
    max_seq_length: int = MAX_SEQ_LENGTH,
    stride: int = STRIDE,
) -> TaggingWindows:
    """The windows of evaluation for words to tag: `data.alignment.tokenize_and_align` cuts long
    sentences into windows of `max_seq_length` sub-tokens overlapping by `stride`, and
    `data.alignment.choose_word_positions` picks each word's window (where it has most context)."""
    words = datasets.Dataset.from_dict({TOKEN_COLUMN: [list(tokens) for tokens in token_lists]})
    windows = tokenize_and_align(words, tokenizer, label2id, max_seq_length=max_seq_length, stride=stride)
    rows, positions = choose_word_positions(windows, [len(tokens) for tokens in token_lists])
    inputs = windows.select_columns([name for name in tokenizer.model_input_names if name in windows.column_names])
    return TaggingWindows(inputs, np.asarray(windows["length"]), rows, positions)


@dataclass(frozen=True)
class WordDecoder:
    """A model's word probabilities -> one tag per word and the entities, decoded as its evaluation decoded them.

    `labels`: the model's tags in id order; `scheme`: their tag scheme ("IOB2" or "IOBES"); `method`:
    "argmax" (each word's most probable tag) or "viterbi" (per sentence, the valid tag sequence of
    highest summed log-probability; `ner_imbalance.decoding`). A calibration bias needs nothing
    here: it is folded into the model's classifier.
    """

    labels: tuple[str, ...]
    scheme: str
    method: str

    @classmethod
    def from_config(cls, config: PretrainedConfig, method: str | None = None) -> WordDecoder:
        """The decoder of a model `config`: `method` by default the decoding `train_ner.py` recorded in
        it (argmax for a model without that record); the recorded scheme, else the labels' own."""
        id2label = {int(index): label for index, label in config.id2label.items()}
        labels = tuple(id2label[index] for index in range(len(id2label)))
        method = method or getattr(config, DECODING_CONFIG_KEY, ARGMAX)
        if method not in DECODING_METHODS:
            raise ValueError(f"decoding must be one of {', '.join(DECODING_METHODS)}, got {method!r}")
        return cls(labels, getattr(config, TAG_SCHEME_CONFIG_KEY, None) or detect_scheme(labels), method)

    def tag(self, sentences: Sequence[Sentence], probabilities: np.ndarray) -> list[TaggedSentence]:
        """Tag `sentences` from `probabilities` `[num_words, num_labels]` of their words (sentences
        concatenated, input order): one tag per word, the model's probability of that tag, the entities."""
        num_words = [len(sentence.tokens) for sentence in sentences]
        log_probabilities = np.log(np.maximum(probabilities, np.finfo(np.float32).tiny))
        label_ids = decode(log_probabilities, num_words, list(self.labels), scheme=self.scheme, method=self.method)
        tag_probabilities = probabilities[np.arange(len(label_ids)), label_ids]
        tags = np.asarray(self.labels, dtype=object)[label_ids].tolist()
        bounds = np.concatenate(([0], np.cumsum(num_words)))
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


class Tagger:
    """A token-classification model that tags words: batched, length-grouped, on CPU or GPU.

    Args:
        model, tokenizer: a model trained by `train_ner.py` and its (fast) tokenizer.
        device: "cpu", "cuda", "cuda:1", ...; default CUDA when available.
        dtype: "auto" (bf16 on CUDA where supported, float32 elsewhere), "float32" or "bfloat16".
        batch_size: windows per forward pass.
        max_seq_length, stride: the windows of long sentences, as in training (`--max_seq_length`,
            `--stride`); a word's tag comes from the window where it has most context.
        decoding: "argmax" or "viterbi" (`ner_imbalance.decoding`); default: the decoding the model
            was evaluated with, recorded in its config by `train_ner.py` (argmax for a model without
            that record). Viterbi runs on the words' log-probabilities, per sentence.
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
        decoding: str | None = None,
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
        self.decoder = WordDecoder.from_config(model.config, decoding)
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

    @classmethod
    def from_folders(cls, model_dirs: Sequence[str | os.PathLike], **kwargs: Any) -> Tagger:
        """A tagger for a seed ensemble of folders (`load_ensemble`): their word log-probabilities are averaged
        before decoding (`ensemble.LogProbabilityEnsemble`; labels aligned by name), so a word's probability is
        the softmax of the mean log-probabilities. The first folder gives the tokenizer, the decoding and the
        windows (`kwargs` as `Tagger`). Each member keeps its own calibration bias (folded into its
        classifier): the ensemble applies the mean of the members' biases to the mean of their uncalibrated
        log-probabilities. `UsageError` naming both folders for a folder of another label set or vocabulary."""
        ensemble, tokenizer = load_ensemble(model_dirs)
        return cls(ensemble, tokenizer, **kwargs)  # type: ignore[arg-type]

    @property
    def labels(self) -> np.ndarray:
        """The model's tags in id order (an object array)."""
        return np.asarray(self.decoder.labels, dtype=object)

    def word_probabilities(self, token_lists: Sequence[Sequence[str]], *, progress: bool = False) -> np.ndarray:
        """`[num_words, num_labels]` label probabilities of every word (sentences concatenated, input
        order): the softmax at the word's first sub-token in the window it is predicted from."""
        inputs, lengths, rows, positions = tagging_windows(
            token_lists,
            self.tokenizer,
            self.model.config.label2id,
            max_seq_length=self.max_seq_length,
            stride=self.stride,
        )
        batches = np.array_split(np.argsort(-lengths, kind="stable"), max(1, -(-len(lengths) // self.batch_size)))
        batch_of_row = np.empty(len(lengths), dtype=np.int64)
        slot_in_batch = np.empty(len(lengths), dtype=np.int64)
        for number, batch in enumerate(batches):
            batch_of_row[batch] = number
            slot_in_batch[batch] = np.arange(len(batch))
        word_order = np.argsort(batch_of_row[rows], kind="stable")
        words_per_batch = np.split(word_order, np.cumsum(np.bincount(batch_of_row[rows], minlength=len(batches)))[:-1])
        probabilities = np.zeros((len(rows), len(self.decoder.labels)), dtype=np.float32)
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
        """Tag `Sentence`s or plain word lists (`[["Taylor", "Swift"], ["Paris"]]`): one tag per word (by
        `self.decoder`), the model's probability of that tag, and the entities.

        Raises a TypeError for a string where a list of words belongs (`tag("a text")`, `tag(["a text"])`),
        which would be tagged character by character: raw text goes to `tag_text`."""
        text = sentences if isinstance(sentences, str) else next((s for s in sentences if isinstance(s, str)), None)
        if text is not None:
            raise TypeError(
                f"Tagger.tag takes sentences as lists of words, such as [['Taylor', 'Swift']], not the string "
                f"{text[:40]!r}: tag raw text with Tagger.tag_text(texts)"
            )
        sentences = [sentence if isinstance(sentence, Sentence) else Sentence(list(sentence)) for sentence in sentences]
        probabilities = self.word_probabilities([sentence.tokens for sentence in sentences], progress=progress)
        return self.decoder.tag(sentences, probabilities)

    def tag_text(self, texts: Sequence[str], *, progress: bool = False) -> list[TaggedSentence]:
        """Tag raw texts, each split into words by the tokenizer's pre-tokenizer (`split_words`)."""
        if isinstance(texts, str):
            raise TypeError(f"Tagger.tag_text takes a list of texts, such as [{texts[:40]!r}], not one string")
        return self.tag([text_sentence(text, self.tokenizer) for text in texts], progress=progress)
