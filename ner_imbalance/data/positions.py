"""How many sub-tokens a window may hold for a model: the absolute position embeddings of its config.

A model with absolute position embeddings (`max_position_embeddings`) cannot read a window longer than
its positions; RoBERTa-style models start their position ids after the padding index, so
`max_position_embeddings - pad_token_id - 1` of them are usable. Models with relative positions only
(DeBERTa with `position_biased_input: false`) have no limit. Training and prediction both check
`--max_seq_length` here before any model loads.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ner_imbalance.errors import UsageError

PADDING_OFFSET_MODELS = frozenset({"roberta", "xlm-roberta", "camembert", "longformer", "mpnet", "xmod"})
"""`model_type`s whose position ids start after the padding index (RoBERTa's scheme)."""


def usable_positions(config: Mapping[str, Any]) -> int | None:
    """The longest window a model of `config` (its config.json as a mapping) can read, None without a limit."""
    positions = config.get("max_position_embeddings")
    if positions is None or not config.get("position_biased_input", True):
        return None
    if config.get("model_type") in PADDING_OFFSET_MODELS:
        positions -= (config.get("pad_token_id") or 0) + 1
    return positions


def check_max_seq_length(max_seq_length: int, config: Mapping[str, Any], model: str) -> None:
    """A one-line `UsageError` naming `--max_seq_length` when it exceeds the usable positions of the model
    `model` (a folder or name, for the message) whose config is `config`."""
    positions = usable_positions(config)
    if positions is not None and max_seq_length > positions:
        raise UsageError(
            f"--max_seq_length {max_seq_length} exceeds the {positions} positions of {model} "
            f"(max_position_embeddings in its config.json): give --max_seq_length {positions} or less"
        )
