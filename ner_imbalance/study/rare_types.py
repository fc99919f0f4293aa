"""What each calibration metric does to the rare entity types, cross-fitted on stored dev logits.

For every run of the given settings, the bias of each calibration option (`CalibrationOption`: a
metric of `calibration.objective` and its factor) is cross-fitted on the run's dev logits
(`crossfit.crossfit`: chosen on one half of dev, scored on the other, pooled), and the pooled
tags are scored: micro F1, macro F1 and the recall of each named type. Option `none` is the
uncalibrated model under the same decoding. The table gives the mean over each setting's seeds.
No retraining and no forward pass: only `<run_id>.logits.npz` beside the records.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ner_imbalance.calibration.objective import (
    BLEND,
    CALIBRATION_METRICS,
    DEFAULT_MACRO_WEIGHT,
    DEFAULT_RECALL_FLOOR,
    KEEP_RECALL,
    check_metric_options,
)
from ner_imbalance.calibration.search import NO_CALIBRATION, tags_from_logits
from ner_imbalance.constants import VITERBI
from ner_imbalance.evaluation import evaluate_tags
from ner_imbalance.study.crossfit import crossfit
from ner_imbalance.study.records import DevOutputs, require_dev_outputs
from ner_imbalance.study.summary import summarize
from ner_imbalance.tags import detect_scheme

_FACTOR_OF = {KEEP_RECALL: "recall_floor", BLEND: "macro_weight"}


@dataclass(frozen=True)
class CalibrationOption:
    """A calibration metric with its factor (`recall_floor` of `micro_f1_keep_recall`, `macro_weight`
    of `blend`), or `none` for no calibration. Written `metric` or `metric:factor`."""

    metric: str
    recall_floor: float = DEFAULT_RECALL_FLOOR
    macro_weight: float = DEFAULT_MACRO_WEIGHT

    @classmethod
    def parse(cls, text: str) -> CalibrationOption:
        """`none`, `micro_f1`, `macro_f1`, `micro_f1_keep_recall[:floor]` or `blend[:weight]`, else `ValueError`."""
        metric, _, factor = text.partition(":")
        if metric == NO_CALIBRATION and not factor:
            return cls(metric)
        if metric not in CALIBRATION_METRICS or (factor and metric not in _FACTOR_OF):
            raise ValueError(
                f"calibration option {text!r}: give none, micro_f1, macro_f1, {KEEP_RECALL}[:floor] or {BLEND}[:weight]"
            )
        try:
            option = cls(metric, **({_FACTOR_OF[metric]: float(factor)} if factor else {}))
        except ValueError:
            raise ValueError(f"calibration option {text!r}: the factor {factor!r} is not a number") from None
        check_metric_options(metric, option.recall_floor, option.macro_weight)
        return option

    @property
    def name(self) -> str:
        factor = _FACTOR_OF.get(self.metric)
        return f"{self.metric}:{getattr(self, factor):g}" if factor else self.metric


def option_scores(
    outputs: DevOutputs, option: CalibrationOption, *, mode: str, decoding: str = VITERBI
) -> dict[str, Any]:
    """`evaluate_tags` scores of one run's dev tags under `option`: cross-fitted, or uncalibrated for `none`."""
    if option.metric == NO_CALIBRATION:
        scheme = detect_scheme(outputs.labels)
        tags = tags_from_logits(
            outputs.logits, outputs.sentence_lengths, outputs.labels, scheme=scheme, decoding=decoding
        )
        return evaluate_tags(outputs.tags(outputs.gold), tags)
    return crossfit(
        outputs,
        mode,
        metric=option.metric,
        recall_floor=option.recall_floor,
        macro_weight=option.macro_weight,
        decoding=decoding,
    ).scores


@dataclass(frozen=True)
class RareTypeRow:
    """One setting under one option: the mean over `seeds` of micro F1, macro F1 and each type's recall."""

    label: str
    option: str
    seeds: tuple[int, ...]
    f1: float
    macro_f1: float
    recall: dict[str, float]


def rare_type_rows(
    records: Mapping[str, Mapping[str, Any]],
    results_dir: str | os.PathLike,
    setting_ids: Sequence[str],
    options: Sequence[CalibrationOption],
    types: Sequence[str],
    *,
    mode: str,
    decoding: str = VITERBI,
) -> list[RareTypeRow]:
    """A row per setting (in `setting_ids` order) and option, over all the setting's runs in `records`.

    `ValueError` naming a setting with no records; `MissingDevOutputsError` naming a run without logits.
    """
    rows = []
    for setting_id in setting_ids:
        runs = sorted(
            (record for record in records.values() if record["setting_id"] == setting_id), key=lambda r: r["seed"]
        )
        if not runs:
            raise ValueError(f"setting {setting_id!r} has no records")
        outputs = [require_dev_outputs(results_dir, run["run_id"], "the rare-type calibration table") for run in runs]
        for option in options:
            scores = [option_scores(run_outputs, option, mode=mode, decoding=decoding) for run_outputs in outputs]
            rows.append(
                RareTypeRow(
                    label=summarize(runs).label,
                    option=option.name,
                    seeds=tuple(run["seed"] for run in runs),
                    f1=float(np.mean([score["f1"] for score in scores])),
                    macro_f1=float(np.mean([score["macro_f1"] for score in scores])),
                    recall={
                        name: float(np.mean([score["per_type"].get(name, {}).get("recall", 0.0) for score in scores]))
                        for name in types
                    },
                )
            )
    return rows


def rare_type_table(rows: Sequence[RareTypeRow], types: Sequence[str]) -> str:
    """Markdown: setting, option, seeds, micro F1, macro F1, each type's recall and their mean (percent)."""
    header = ["setting", "calibration", "seeds", "micro F1", "macro F1", *(f"recall {name}" for name in types)]
    lines = [
        "| " + " | ".join([*header, "rare mean"]) + " |",
        "| " + " | ".join(["---", "---", "---:", *["---:"] * (len(header) - 2)]) + " |",
    ]
    for row in rows:
        recalls = [100 * row.recall[name] for name in types]
        values = [100 * row.f1, 100 * row.macro_f1, *recalls, float(np.mean(recalls))]
        cells = [row.label, f"`{row.option}`", str(len(row.seeds)), *(f"{value:.2f}" for value in values)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
