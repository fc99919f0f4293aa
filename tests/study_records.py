"""Hand-made study run records, shaped as `ner_imbalance.study.runner` writes them, for the report tests."""

from __future__ import annotations

from typing import Any

import numpy as np

from ner_imbalance.study.grid import RunSpec
from ner_imbalance.study.records import DevOutputs


def study_record(run: RunSpec, metrics: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """The record of `run` with these dev `metrics` and any other record `fields` (learning curve, timings...)."""
    return {
        "run_id": run.run_id,
        "setting_id": run.setting_id,
        "experiment": run.experiment,
        "dataset": run.dataset,
        "entity_keep_ratio": run.entity_keep_ratio,
        "loss": run.loss,
        "hyperparameters": run.hyperparameters,
        "class_weights": run.class_weights,
        "sampling": run.sampling,
        "seed": run.seed,
        "training": {**run.training, "max_seq_length": 64, "per_device_train_batch_size": 16, "learning_rate": 5e-5},
        "metrics": metrics,
        **fields,
    }


def entity_scores(precision: float, recall: float, f1: float, support: int) -> dict[str, float]:
    """One entity type's dev scores in a record's `metrics["per_type"]`."""
    return {"precision": precision, "recall": recall, "f1": f1, "support": support}


def random_dev_outputs(seed: int, labels: list[str], num_sentences: int = 40) -> DevOutputs:
    """A run's dev outputs: noisy logits around random gold tags (invalid transitions included, so Viterbi
    changes some), the stored predictions their arg-max."""
    generator = np.random.default_rng(seed)
    lengths = generator.integers(1, 9, size=num_sentences)
    gold = generator.integers(0, len(labels), size=lengths.sum())
    logits = generator.normal(size=(len(gold), len(labels))) + 2.0 * np.eye(len(labels))[gold]
    return DevOutputs(logits.astype(np.float16), gold, logits.argmax(axis=1), lengths, labels)
