"""The dev score a calibration maximises, from per-type entity counts (`EntityCounter.counts`).

- `micro_f1`: entity F1 over all entities;
- `macro_f1`: the mean of the per-type F1 (types with gold or predicted entities);
- `micro_f1_keep_recall`: micro F1 over the biases that keep every type's recall: a candidate
  bias `b` is allowed only when, for every entity type `t`, `recall_t(b) >= floor * recall_t(0)`,
  with `recall_t(0)` the recall of the uncalibrated tags under the same decoding; other candidates
  score `-inf`. The zero bias is always allowed (floor <= 1), so the search stays feasible; with
  floor 0 every bias is allowed and the objective is `micro_f1`. A micro-F1 bias buys precision
  by giving up the rare types (issue 37); the floor bounds what it may give up;
- `blend`: `(1 - w) * micro_f1 + w * macro_f1`, `w` the macro weight.
"""

from __future__ import annotations

import numpy as np

from ner_imbalance.evaluation.entity_counts import macro_f1, micro_scores

MICRO_F1 = "micro_f1"
MACRO_F1 = "macro_f1"
KEEP_RECALL = "micro_f1_keep_recall"
BLEND = "blend"
CALIBRATION_METRICS = (MICRO_F1, MACRO_F1, KEEP_RECALL, BLEND)
DEFAULT_METRIC = MICRO_F1
DEFAULT_RECALL_FLOOR = 0.8
"""`micro_f1_keep_recall`: the share of its uncalibrated recall every type keeps (`--calibration_recall_floor`)."""
DEFAULT_MACRO_WEIGHT = 0.5
"""`blend`: the weight of macro F1 (`--calibration_macro_weight`)."""


class Objective:
    """`objective(counts)`: the score of `[3, num_types]` gold / predicted / correct entity counts.

    `uncalibrated` are the counts of the zero bias (the recalls `micro_f1_keep_recall` keeps);
    `recall_floor` and `macro_weight` are read only by their metric.
    """

    def __init__(
        self,
        metric: str,
        uncalibrated: np.ndarray,
        *,
        recall_floor: float = DEFAULT_RECALL_FLOOR,
        macro_weight: float = DEFAULT_MACRO_WEIGHT,
    ) -> None:
        check_metric_options(metric, recall_floor, macro_weight)
        self.metric = metric
        self.recall_floor = recall_floor
        self.macro_weight = macro_weight
        # Same gold per type, so recall_t(b) >= floor * recall_t(0) is correct_t(b) >= floor * correct_t(0).
        self.least_correct = np.ceil(recall_floor * np.asarray(uncalibrated)[2] - 1e-9)

    def __call__(self, counts: np.ndarray) -> float:
        if self.metric == MACRO_F1:
            return macro_f1(counts)
        micro = micro_scores(counts)[2]
        if self.metric == BLEND:
            return (1 - self.macro_weight) * micro + self.macro_weight * macro_f1(counts)
        if self.metric == KEEP_RECALL and (counts[2] < self.least_correct).any():
            return -np.inf
        return micro

    def settings(self) -> dict[str, float]:
        """The option of this metric, for `calibration.json` (none for `micro_f1` and `macro_f1`)."""
        if self.metric == KEEP_RECALL:
            return {"recall_floor": self.recall_floor}
        if self.metric == BLEND:
            return {"macro_weight": self.macro_weight}
        return {}


def check_metric_options(metric: str, recall_floor: float, macro_weight: float) -> None:
    """`ValueError` unless `metric` is a calibration metric and both options lie in [0, 1]."""
    if metric not in CALIBRATION_METRICS:
        raise ValueError(f"metric must be one of {', '.join(CALIBRATION_METRICS)}, got {metric!r}")
    for name, value in (("recall_floor", recall_floor), ("macro_weight", macro_weight)):
        if not 0 <= value <= 1:
            raise ValueError(f"{name} must lie in [0, 1], got {value}")
