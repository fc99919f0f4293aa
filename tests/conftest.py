"""Shared fixtures: a tiny WordPiece tokenizer and a tiny randomly initialised BERT.

Nothing here reads `../shared` or the network, so the suite passes on a fresh clone.
"""

from __future__ import annotations

from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def tiny_tokenizer():
    """A fast uncased WordPiece tokenizer over `fixtures/vocab.txt`: words outside the vocabulary
    split into single-character pieces, which gives multi-sub-token words for alignment tests."""
    from transformers import BertTokenizerFast

    pieces = (FIXTURES / "vocab.txt").read_text(encoding="utf-8").split()
    vocab = {piece: index for index, piece in enumerate(pieces)}
    return BertTokenizerFast(vocab=vocab, do_lower_case=True, model_max_length=512)


def make_tiny_bert(num_labels: int, vocab_size: int, seed: int = 0):
    """A 2-layer, 32-wide BertForTokenClassification with random weights (fixed by `seed`)."""
    import torch
    from transformers import BertConfig, BertForTokenClassification

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        num_labels=num_labels,
    )
    return BertForTokenClassification(config)


@pytest.fixture
def tiny_bert_factory(tiny_tokenizer):
    def factory(num_labels: int, seed: int = 0):
        return make_tiny_bert(num_labels, len(tiny_tokenizer), seed)

    return factory
