"""Tiny, offline model pieces for the tests: a WordPiece tokenizer, a random BERT, token batches.

Importable by pytest fixtures (`conftest.py`) and by worker scripts that `accelerate launch` starts.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import datasets
import pytest
import torch
import transformers
from transformers import BertConfig, BertForTokenClassification, BertModel, BertTokenizerFast, TrainerCallback

from ner_imbalance.config.arguments import NerTrainingArguments, parse_arguments
from ner_imbalance.training.run import build_trainer, prepare_run
from ner_imbalance.utils.logging_state import existing_loggers

REPO = Path(__file__).resolve().parents[1]
"""The repository root, for tests in any folder under `tests/`."""
FIXTURES = Path(__file__).parent / "fixtures"


def make_tiny_tokenizer() -> BertTokenizerFast:
    """A fast uncased WordPiece tokenizer over `fixtures/vocab.txt`: words outside the vocabulary
    split into single-character pieces, which gives multi-sub-token words for alignment tests."""
    pieces = (FIXTURES / "vocab.txt").read_text(encoding="utf-8").split()
    vocab = {piece: index for index, piece in enumerate(pieces)}
    return BertTokenizerFast(vocab=vocab, do_lower_case=True, model_max_length=512)


def make_tiny_bert(num_labels: int, vocab_size: int, seed: int = 0, dropout: float = 0.1) -> BertForTokenClassification:
    """A 2-layer, 32-wide BertForTokenClassification with random weights (fixed by `seed`)."""
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
        num_labels=num_labels,
    )
    return BertForTokenClassification(config)


TINY_MAX_POSITIONS = 128
TINY_CORPUS = FIXTURES / "tiny_corpus"


def save_tiny_encoder(folder: str | Path, tokenizer: BertTokenizerFast, seed: int = 0) -> Path:
    """Save a random 2-layer, 32-wide BERT encoder (no head: any label count fits) and `tokenizer`
    as a model folder that `--model_name_or_path` accepts."""
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=TINY_MAX_POSITIONS,
    )
    BertModel(config, add_pooling_layer=False).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return Path(folder)


def random_token_dataset(num_examples: int, vocab_size: int, num_labels: int, seed: int = 0) -> datasets.Dataset:
    """Sentences of 6 to 13 ids with random labels; -100 on [CLS]/[SEP] and on about 20 % of the rest."""
    generator = torch.Generator().manual_seed(seed)
    rows: dict[str, list] = {"input_ids": [], "attention_mask": [], "labels": []}
    for _ in range(num_examples):
        length = int(torch.randint(4, 12, (1,), generator=generator))
        input_ids = [2] + torch.randint(5, vocab_size, (length,), generator=generator).tolist() + [3]
        labels = torch.randint(0, num_labels, (length + 2,), generator=generator)
        labels[torch.rand(length + 2, generator=generator) < 0.2] = -100
        labels[0] = labels[-1] = -100
        rows["input_ids"].append(input_ids)
        rows["attention_mask"].append([1] * len(input_ids))
        rows["labels"].append(labels.tolist())
    return datasets.Dataset.from_dict(rows)


def tiny_training_arguments(output_dir: str | Path, **overrides) -> NerTrainingArguments:
    """Deterministic CPU arguments for short runs: one plain-SGD step at a constant rate (so
    gradients can be read off weight changes), sequential order, no evaluation, saving or logging
    output; `overrides` replace any field."""
    settings = dict(
        output_dir=str(output_dir),
        per_device_train_batch_size=8,
        gradient_accumulation_steps=1,
        learning_rate=0.5,
        optim="sgd",
        weight_decay=0.0,
        warmup_steps=0,
        lr_scheduler_type="constant",
        max_grad_norm=0.0,
        max_steps=1,
        eval_strategy="no",
        save_strategy="no",
        load_best_model_at_end=False,
        train_sampling_strategy="sequential",
        report_to="none",
        disable_tqdm=True,
        use_cpu=True,
        seed=0,
        logging_steps=100,
    )
    settings.update(overrides)
    return NerTrainingArguments(**settings)


def tiny_corpus_flags(model_dir: Path, output_dir: Path, *extra: str) -> list[str]:
    """`train_ner.py` flags of a run of the model in `model_dir` on the tiny corpus's train and dev
    files into `output_dir`, then `extra`."""
    return [
        "--model_name_or_path",
        str(model_dir),
        "--train_file",
        str(TINY_CORPUS / "train.conll"),
        "--validation_file",
        str(TINY_CORPUS / "dev.conll"),
        "--output_dir",
        str(output_dir),
        *extra,
    ]


class StopAtStep(TrainerCallback):
    """Stops training after optimizer step `step` (as an interruption would)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_training_stop = True
        return control


def save_tiny_tagger(folder: str | Path, labels: list[str], seed: int) -> Path:
    """A random BertForTokenClassification with the NER `labels` (no dropout) and the tiny tokenizer,
    saved in `folder` as train_ner.py saves a model: what the tagger and predict_ner.py load."""
    tokenizer = make_tiny_tokenizer()
    model = make_tiny_bert(len(labels), len(tokenizer), seed=seed, dropout=0.0)
    model.config.id2label = dict(enumerate(labels))
    model.config.label2id = {label: index for index, label in enumerate(labels)}
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return Path(folder)


def predict_flags(model_dir: str | Path, source: str | Path) -> list[str]:
    """predict_ner.py's flags for a tiny tagger (8-sub-token windows, so sentences are split) without `--output`."""
    windows = ["--max_seq_length", "8", "--stride", "2"]
    return ["--model", str(model_dir), "--input", str(source), "--no_progress", *windows]


def snapshot(folder: Path) -> dict[str, str]:
    """relative path -> sha256 of every file under `folder`."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def one_error_line(stderr: str) -> str:
    """The one `ner-train: error: ...` line of a refused run's stderr (no traceback, nothing else)."""
    lines = stderr.strip().splitlines()
    assert "Traceback" not in stderr
    assert len(lines) == 1, stderr
    assert lines[0].startswith("ner-train: error: ")
    return lines[0]


def run_flags(model_dir, output_dir, *extra: str) -> list[str]:
    """Flags of a short CPU run on the tiny corpus: batch 8, windows of 16 sub-tokens, stride 4."""
    return tiny_corpus_flags(
        model_dir,
        output_dir,
        "--use_cpu",
        "true",
        "--disable_tqdm",
        "true",
        "--report_to",
        "none",
        "--per_device_train_batch_size",
        "8",
        "--max_seq_length",
        "16",
        "--stride",
        "4",
        *extra,
    )


class StopAfterFirstEpoch(TrainerCallback):
    """Ends training, with a checkpoint, at the end of the first epoch."""

    def on_epoch_end(self, args, state, control, **kwargs):
        control.should_training_stop = True
        control.should_save = True
        return control


def two_epoch_trainer(model_dir, output_dir, *extra: str):
    """The trainer of a 2-epoch run on the tiny corpus (no evaluation), resuming if `extra` says so."""
    flags = run_flags(
        model_dir, output_dir, "--num_train_epochs", "2", "--eval_strategy", "no", "--load_best_model_at_end", "false"
    )
    arguments = parse_arguments([*flags, *extra])
    return build_trainer(prepare_run(*arguments, resume_from_checkpoint=arguments[3].resume_from_checkpoint))[0]


def require_onnx_extra() -> None:
    """Skip the calling test module without the onnx extra (onnxruntime, onnxscript); under CI, fail instead."""
    if importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("onnxscript") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("onnxruntime and onnxscript are in the test extra: pip install -e '.[test]'", pytrace=False)
        pytest.skip("needs the onnx extra: pip install 'ner_imbalance[onnx]'", allow_module_level=True)


def output_state() -> dict[str, Any]:
    """What an in-process command could leave changed for the code after it: each logger's level (the
    `transformers` logger's is its verbosity), handlers, `propagate` and `disabled`; `logging.disable`;
    the `warnings` filters; whether the `datasets` and `transformers` progress bars are off."""
    return {
        "loggers": {
            name: (logger.level, tuple(logger.handlers), logger.propagate, logger.disabled)
            for name, logger in existing_loggers().items()
        },
        "logging.disable": logging.root.manager.disable,
        "warnings": list(warnings.filters),
        "progress bars off": datasets.are_progress_bars_disabled(),
        "transformers progress bars on": transformers.utils.logging.is_progress_bar_enabled(),
    }


@contextmanager
def umask(mask: int) -> Iterator[None]:
    """The process umask set to `mask` while the block runs (files it writes get `mode & ~mask`), then as it was."""
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)
