"""ner_imbalance: token-classification fine-tuning with losses for rare entity tags."""

__version__ = "0.1.0"
