"""Per-token losses for class-imbalanced tagging.

`ce` (cross-entropy, class-weighted with `class_weights`), `focal` (Lin et al., ICCV 2017),
`softened` (soft truncation, Su 2017), `truncated` (hard truncation), `ghmc` (GHM-C, Li et al.,
AAAI 2019), `logit_adjusted` (Menon et al., ICLR 2021: cross-entropy of `x + tau log prior`) and
`dice` (self-adjusting dice, Li et al., ACL 2020, per token).

Each loss is a `torch.nn.Module` called as `loss_fn(logits, labels, num_items_in_batch=None)`
on logits `[..., C]` and integer labels `[...]`; it knows nothing of the Trainer or of NER
data. Build one by name with `build_loss(name, **hyperparameters)`; add one with
`register_loss(name, cls)`: its declared `HYPERPARAMETERS` become command-line flags.
"""

from ner_imbalance.losses._base import TokenLoss
from ner_imbalance.losses._hyperparameters import Condition, Hyperparameter, SearchSpace, integer_at_least, real_in
from ner_imbalance.losses._reduce import TokenBatch, reduce_token_losses, token_log_probs
from ner_imbalance.losses._registry import (
    LOSS_NAMES,
    LOSS_REGISTRY,
    build_loss,
    declared_hyperparameters,
    loss_class,
    loss_hyperparameters,
    loss_search_space,
    register_loss,
    unregister_loss,
)
from ner_imbalance.losses.cross_entropy import CrossEntropyLoss
from ner_imbalance.losses.dice import DiceLoss
from ner_imbalance.losses.focal import FocalLoss
from ner_imbalance.losses.ghm import GHMC_VARIANTS, GHMCLoss
from ner_imbalance.losses.logit_adjusted import LogitAdjustedLoss
from ner_imbalance.losses.softened import SOFTENED_VARIANTS, SoftenedLoss
from ner_imbalance.losses.truncated import TruncatedLoss

__all__ = [
    "GHMC_VARIANTS",
    "LOSS_NAMES",
    "LOSS_REGISTRY",
    "SOFTENED_VARIANTS",
    "Condition",
    "CrossEntropyLoss",
    "DiceLoss",
    "FocalLoss",
    "GHMCLoss",
    "Hyperparameter",
    "LogitAdjustedLoss",
    "SearchSpace",
    "SoftenedLoss",
    "TokenBatch",
    "TokenLoss",
    "TruncatedLoss",
    "build_loss",
    "declared_hyperparameters",
    "integer_at_least",
    "loss_class",
    "loss_hyperparameters",
    "loss_search_space",
    "real_in",
    "reduce_token_losses",
    "register_loss",
    "token_log_probs",
    "unregister_loss",
]
