"""Shared fixtures: a tiny WordPiece tokenizer and a tiny randomly initialised BERT.

Nothing here reads `../shared` or the network, so the suite passes on a fresh clone.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_models import FIXTURES, make_tiny_bert, make_tiny_tokenizer, save_tiny_encoder


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def tiny_tokenizer():
    return make_tiny_tokenizer()


@pytest.fixture
def tiny_bert_factory(tiny_tokenizer):
    def factory(num_labels: int, seed: int = 0, dropout: float = 0.1):
        return make_tiny_bert(num_labels, len(tiny_tokenizer), seed, dropout)

    return factory


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tiny_tokenizer) -> Path:
    """A tiny random BERT encoder and its tokenizer saved as a model folder (128 positions)."""
    return save_tiny_encoder(tmp_path_factory.mktemp("tiny_bert"), tiny_tokenizer)
