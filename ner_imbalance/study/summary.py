"""Run records -> one summary per loss setting (mean ± std over seeds), grouped by study config.

Each study config is one `Section`. Its records are found by expanding the config again and
looking up the run ids, so a record shared by two configs appears in both, and records of other
grids are ignored. The standard deviation is the sample one (ddof=1) over seeds, absent for a
single seed.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ner_imbalance.constants import ENTITY_METRICS, LOSS_SHARE_PREFIX, OUTSIDE, OVERALL_METRICS
from ner_imbalance.study.grid import SweepIncompleteError, expand_study, load_study_config, loss_label, section_kind


@dataclass(frozen=True)
class Stat:
    """Mean and sample standard deviation (ddof=1; None for one value) of `n` values."""

    mean: float
    std: float | None
    n: int


NO_VALUE = "—"


def format_stat(stat: Stat | None) -> str:
    """`60.0 ± 10.0` (percent); `60.0 ± —` for a single seed."""
    if stat is None:
        return NO_VALUE
    spread = NO_VALUE if stat.std is None else f"{stat.std * 100:.1f}"
    return f"{stat.mean * 100:.1f} ± {spread}"


def mean_std(values: Iterable[float]) -> Stat:
    values = [float(value) for value in values]
    if not values:
        raise ValueError("mean_std needs at least one value")
    std = statistics.stdev(values) if len(values) > 1 else None
    return Stat(mean=statistics.fmean(values), std=std, n=len(values))


@dataclass
class SettingSummary:
    """One loss setting on one dataset and keep ratio, over its seeds."""

    setting_id: str
    label: str
    dataset: str
    entity_keep_ratio: float
    loss: str
    hyperparameters: dict[str, Any]
    class_weights: str
    sampling: dict[str, Any]
    seeds: list[int]
    metrics: dict[str, Stat]
    per_type: dict[str, dict[str, Stat]]
    support: dict[str, int]
    entity_token_share: Stat | None = None
    train_runtime_s: Stat | None = None

    @property
    def n(self) -> int:
        return len(self.seeds)

    @property
    def is_reference(self) -> bool:
        """Plain cross-entropy: the row every other row is compared with."""
        return self.loss == "ce" and self.class_weights == "none" and not self.hyperparameters and not self.sampling


def summarize(records: Sequence[Mapping[str, Any]]) -> SettingSummary:
    """Mean ± std over the seeds of one setting's records."""
    first = records[0]
    sampling = dict(first.get("sampling") or {})  # records before sentence sampling have none
    per_type_names = sorted({name for record in records for name in record["metrics"]["per_type"]})
    return SettingSummary(
        setting_id=first["setting_id"],
        label=loss_label(first["loss"], first["hyperparameters"], first["class_weights"], sampling=sampling),
        dataset=first["dataset"],
        entity_keep_ratio=first["entity_keep_ratio"],
        loss=first["loss"],
        hyperparameters=dict(first["hyperparameters"]),
        class_weights=first["class_weights"],
        sampling=sampling,
        seeds=sorted(record["seed"] for record in records),
        metrics={name: mean_std(record["metrics"][name] for record in records) for name in OVERALL_METRICS},
        per_type={name: _per_type_stats(records, name) for name in per_type_names},
        support={
            name: int(first["metrics"]["per_type"][name].get("support", 0)) for name in first["metrics"]["per_type"]
        },
        entity_token_share=optional_stat(
            records, lambda record: (record.get("train_statistics") or {}).get("entity_token_share")
        ),
        train_runtime_s=optional_stat(records, lambda record: record.get("train_runtime_s")),
    )


def _per_type_stats(records: Sequence[Mapping[str, Any]], entity_type: str) -> dict[str, Stat]:
    scores = [
        record["metrics"]["per_type"][entity_type] for record in records if entity_type in record["metrics"]["per_type"]
    ]
    return {name: mean_std(score[name] for score in scores) for name in ENTITY_METRICS}


def optional_stat(
    records: Sequence[Mapping[str, Any]], value_of: Callable[[Mapping[str, Any]], float | None]
) -> Stat | None:
    """Mean ± std of `value_of(record)`, or None when a record lacks the value."""
    values = [value_of(record) for record in records]
    return mean_std(values) if values and all(value is not None for value in values) else None


def aggregate(records: Iterable[Mapping[str, Any]]) -> list[SettingSummary]:
    """One summary per setting (the records' `setting_id`), in order of first appearance."""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for record in records:
        groups.setdefault(record["setting_id"], []).append(record)
    return [summarize(group) for group in groups.values()]


def ordered_rows(summaries: Sequence[SettingSummary]) -> list[SettingSummary]:
    """The CE reference first, then the others in config order."""
    return [summary for summary in summaries if summary.is_reference] + [
        summary for summary in summaries if not summary.is_reference
    ]


def entity_types(summaries: Sequence[SettingSummary]) -> list[str]:
    """Entity types of the summaries, most frequent in dev first."""
    support: dict[str, int] = {}
    for summary in summaries:
        for name, count in summary.support.items():
            support.setdefault(name, count)
    return sorted(support, key=lambda name: (-support[name], name))


@dataclass
class Section:
    """The records of one study config, summarized; `blocked` says why it has none yet.

    `calibration`: the config's cross-fitted calibration modes the report adds (`crossfit`);
    `paired_with`: what its cells change relative to their counterparts (`counterparts`).
    """

    config_path: str
    name: str
    title: str
    kind: str
    summaries: list[SettingSummary] = field(default_factory=list)
    runs_expected: int = 0
    runs_finished: int = 0
    blocked: str | None = None
    calibration: list[str] = field(default_factory=list)
    paired_with: dict[str, Any] = field(default_factory=dict)

    def datasets(self) -> list[str]:
        return list(dict.fromkeys(summary.dataset for summary in self.summaries))

    def cells(self, dataset: str) -> dict[float, list[SettingSummary]]:
        """Keep ratio (largest first) -> the summaries of `dataset` at that ratio."""
        cells: dict[float, list[SettingSummary]] = {}
        for summary in self.summaries:
            if summary.dataset == dataset:
                cells.setdefault(summary.entity_keep_ratio, []).append(summary)
        return dict(sorted(cells.items(), reverse=True))


def build_sections(config_paths: Sequence[str | os.PathLike], records: Mapping[str, dict[str, Any]]) -> list[Section]:
    """One section per config: the records whose run ids its grid expands to."""
    sections = []
    for path in config_paths:
        config = load_study_config(path)
        section = Section(
            str(path),
            str(config["name"]),
            str(config.get("title", config["name"])),
            section_kind(config),
            calibration=list(config.get("calibration", [])),
            paired_with=dict(config.get("paired_with", {})),
        )
        try:
            specs = expand_study(config, records)
        except SweepIncompleteError as error:
            section.blocked = str(error)
        else:
            selected = [records[spec.run_id] for spec in specs if spec.run_id in records]
            section.summaries = aggregate(selected)
            section.runs_expected, section.runs_finished = len(specs), len(selected)
        sections.append(section)
    return sections


def loss_share_curve(
    summary: SettingSummary, records: Mapping[str, dict[str, Any]], group: str = OUTSIDE
) -> list[tuple[int, float]]:
    """(optimizer step, share of the training loss from gold `group` tokens) at each training log of
    the setting's lowest-seed run that logged them; [] when none did."""
    logged = [record for record in records.values() if record["setting_id"] == summary.setting_id]
    runs = sorted((record for record in logged if record.get("loss_shares")), key=lambda record: record["seed"])
    if not runs:
        return []
    return [(int(point["step"]), float(point[f"{LOSS_SHARE_PREFIX}{group}"])) for point in runs[0]["loss_shares"]]
