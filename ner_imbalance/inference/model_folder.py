"""Checks of a model folder before anything loads: its weights (or the ONNX graph asked for), its
tokenizer files, and that the windows asked for fit the model's positions."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ner_imbalance.data.positions import check_max_seq_length
from ner_imbalance.inference.onnx_backend import exported_graph

TORCH_BACKEND, ONNX_BACKEND = "torch", "onnx"
BACKENDS = (TORCH_BACKEND, ONNX_BACKEND)
"""torch: the folder's weights; onnx: its exported ONNX graph on ONNX Runtime."""
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
TOKENIZER_FILES = (
    "tokenizer.json",
    "vocab.txt",
    "vocab.json",
    "spiece.model",
    "sentencepiece.bpe.model",
    "tokenizer.model",
)


def check_model_folder(
    model_dir: str | os.PathLike, *, backend: str = TORCH_BACKEND, onnx_variant: str = "fp32", max_seq_length: int
) -> None:
    """Refuse a folder without weights (or without the ONNX graph `onnx_variant` for the onnx backend), and
    windows of `max_seq_length` sub-tokens longer than the model's positions. A folder without config.json
    passes: `load_tokenizer` names what is missing."""
    folder = Path(model_dir)
    config_path = folder / "config.json"
    if not config_path.is_file():
        return
    if backend == ONNX_BACKEND:
        exported_graph(folder, onnx_variant)
    elif not any((folder / name).is_file() for name in WEIGHT_FILES):
        raise FileNotFoundError(f"{folder}: no model weights ({' or '.join(WEIGHT_FILES[::2])}); is the run complete?")
    check_max_seq_length(max_seq_length, json.loads(config_path.read_text(encoding="utf-8")), str(folder))


def check_tokenizer_files(model_dir: str | os.PathLike) -> None:
    """Refuse a folder without tokenizer files (transformers would build an empty tokenizer from the config)."""
    if not any((Path(model_dir) / name).is_file() for name in TOKENIZER_FILES):
        raise FileNotFoundError(f"{model_dir}: no tokenizer files ({', '.join(TOKENIZER_FILES[:3])}, ...)")
