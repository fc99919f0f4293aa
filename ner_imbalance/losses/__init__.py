"""Per-token losses for class-imbalanced tagging: cross-entropy, focal, softened, truncated, GHM-C.

Each loss is a `torch.nn.Module` called as `loss_fn(logits, labels, num_items_in_batch=None)`
on logits `[..., C]` and integer labels `[...]`; it knows nothing of the Trainer or of NER
data. Build one by name with `build_loss(name, **hyperparameters)`.
"""

from ner_imbalance.losses._base import TokenLoss
from ner_imbalance.losses._reduce import TokenBatch, reduce_token_losses, token_log_probs
from ner_imbalance.losses._registry import LOSS_NAMES, LOSS_REGISTRY, build_loss, loss_hyperparameters
from ner_imbalance.losses.cross_entropy import CrossEntropyLoss
from ner_imbalance.losses.focal import FocalLoss
from ner_imbalance.losses.ghm import GHMC_VARIANTS, GHMCLoss
from ner_imbalance.losses.softened import SOFTENED_VARIANTS, SoftenedLoss
from ner_imbalance.losses.truncated import TruncatedLoss

__all__ = [
    "LOSS_NAMES",
    "LOSS_REGISTRY",
    "SOFTENED_VARIANTS",
    "CrossEntropyLoss",
    "FocalLoss",
    "GHMC_VARIANTS",
    "GHMCLoss",
    "SoftenedLoss",
    "TokenBatch",
    "TokenLoss",
    "TruncatedLoss",
    "build_loss",
    "loss_hyperparameters",
    "reduce_token_losses",
    "token_log_probs",
]
