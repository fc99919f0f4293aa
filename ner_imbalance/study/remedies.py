"""The report's "which remedy when": every remedy of the convergence sections against plain CE.

A remedy is a loss setting (loss, hyperparameters, class weights) with a post-hoc calibration
mode: `none`, or one of the section's 2-fold cross-fitted modes (`crossfit`), so plain CE with
calibration is a remedy too. Each is compared with *uncalibrated* plain CE of the same corpus and
seed (only seeds both have are paired):

- Δ micro F1: mean ± sample std over seeds, and the paired bootstrap 95 % interval over dev
  sentences (`evaluation.bootstrap.paired_bootstrap`);
- Δ macro F1 and Δ rare-type recall: mean ± std over seeds. The rare types of a corpus are those
  with fewer training entities than the mean per type (the records' `train_statistics`, full
  training set); rare-type recall is their unweighted mean dev recall.

The verdict states only what the numbers support: `above CE` / `below CE` where the interval
excludes 0 and the mean Δ is larger than its std over seeds; `within seed noise` where the
interval excludes 0 but the seeds disagree by as much as the mean; `no difference shown` where
the interval contains 0. With one seed there is no std, and the interval covers the sampling of
dev sentences only, not seed noise: the text says so.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ner_imbalance.calibration.search import NO_CALIBRATION
from ner_imbalance.evaluation.bootstrap import paired_bootstrap
from ner_imbalance.study.convergence import (
    CONTAINS_ZERO,
    format_interval,
    format_points,
    records_by_seed,
    time_to_reach,
)
from ner_imbalance.study.crossfit import RunCalibration
from ner_imbalance.study.dev_runs import DevRuns
from ner_imbalance.study.summary import Section, SettingSummary, Stat, format_stat, mean_std, ordered_rows

PROTOCOL_SEEDS = 3
"""Seeds per cell the study protocol asks for; fewer are flagged in the text."""
ABOVE, BELOW, NO_DIFFERENCE, SEED_NOISE = "above CE", "below CE", "no difference shown", "within seed noise"


@dataclass(frozen=True)
class Remedy:
    """One remedy on one corpus, paired by seed with uncalibrated plain CE."""

    dataset: str
    label: str
    calibration: str
    seeds: list[int]
    rare_types: tuple[str, ...]
    f1: Stat
    delta_f1: Stat
    interval: tuple[float, float]
    delta_macro_f1: Stat
    rare_recall: Stat | None
    delta_rare_recall: Stat | None
    epochs_to_ce: Stat | None
    seeds_reaching_ce: int

    @property
    def name(self) -> str:
        return self.label if self.calibration == NO_CALIBRATION else f"{self.label} + `{self.calibration}` calibration"

    @property
    def verdict(self) -> str:
        low, high = self.interval
        if low <= 0 <= high:
            return NO_DIFFERENCE
        if self.delta_f1.std is not None and abs(self.delta_f1.mean) <= self.delta_f1.std:
            return SEED_NOISE
        return ABOVE if low > 0 else BELOW

    def to_json(self) -> dict[str, Any]:
        stats = ("f1", "delta_f1", "delta_macro_f1", "rare_recall", "delta_rare_recall", "epochs_to_ce")
        return {
            "dataset": self.dataset,
            "label": self.label,
            "calibration": self.calibration,
            "seeds": self.seeds,
            "rare_types": list(self.rare_types),
            "interval": list(self.interval),
            "verdict": self.verdict,
            "seeds_reaching_ce": self.seeds_reaching_ce,
            **{name: _stat_json(getattr(self, name)) for name in stats},
        }


def _stat_json(stat: Stat | None) -> dict[str, Any] | None:
    return None if stat is None else {"mean": stat.mean, "std": stat.std, "n": stat.n}


def rare_types(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """Types with fewer training entities than the mean per type, read from the first record that has counts."""
    for record in records:
        counts = (record.get("train_statistics") or {}).get("entities_per_type")
        if counts:
            mean_count = statistics.fmean(counts.values())
            return sorted(name for name, count in counts.items() if count < mean_count)
    return []


def _rare_recall(scores: Mapping[str, Any], types: Sequence[str]) -> float | None:
    recalls = [scores["per_type"][name]["recall"] for name in types if name in scores["per_type"]]
    return statistics.fmean(recalls) if recalls else None


def _optional_mean_std(values: Sequence[float | None]) -> Stat | None:
    return mean_std(values) if values and all(value is not None for value in values) else None


def compare_with_ce(
    summaries: Sequence[SettingSummary],
    modes: Sequence[str],
    records: Mapping[str, dict[str, Any]],
    calibrated: Mapping[str, RunCalibration],
    dev_runs: DevRuns,
) -> list[Remedy]:
    """Every setting × calibration mode of one corpus's cell against uncalibrated CE (see the module docstring).

    Runs missing from `calibrated` (a section without calibration) are scored from their stored
    dev outputs, uncalibrated only.
    """
    rows = ordered_rows(summaries)
    if not rows or not rows[0].is_reference:
        return []
    reference = records_by_seed(records, rows[0].setting_id)
    types = rare_types(list(reference.values()))

    def calibration_of(record: Mapping[str, Any]) -> RunCalibration:
        run_id = record["run_id"]
        if run_id in calibrated:
            return calibrated[run_id]
        return dev_runs.calibration(run_id, (), "the remedy comparison")

    reference_runs = {seed: calibration_of(record) for seed, record in reference.items()}
    remedies = []
    for summary in rows:
        ours = records_by_seed(records, summary.setting_id)
        seeds = sorted(ours.keys() & reference.keys())
        if not seeds:
            continue
        timing = time_to_reach(summary, rows[0], records)
        runs = [calibration_of(ours[seed]) for seed in seeds]
        base = [reference_runs[seed] for seed in seeds]
        for mode in (NO_CALIBRATION, *modes):
            if summary.is_reference and mode == NO_CALIBRATION:
                continue
            scores = [run.scores[mode] for run in runs]
            base_scores = [run.scores[NO_CALIBRATION] for run in base]
            rare = [_rare_recall(score, types) for score in scores]
            base_rare = [_rare_recall(score, types) for score in base_scores]
            remedies.append(
                Remedy(
                    dataset=summary.dataset,
                    label=summary.label,
                    calibration=mode,
                    seeds=seeds,
                    rare_types=tuple(types),
                    f1=mean_std(score["f1"] for score in scores),
                    delta_f1=mean_std(score["f1"] - ce["f1"] for score, ce in zip(scores, base_scores)),
                    interval=paired_bootstrap(
                        [run.counts[mode] for run in runs], [run.counts[NO_CALIBRATION] for run in base]
                    ),
                    delta_macro_f1=mean_std(
                        score["macro_f1"] - ce["macro_f1"] for score, ce in zip(scores, base_scores)
                    ),
                    rare_recall=_optional_mean_std(rare),
                    delta_rare_recall=_optional_mean_std(
                        [None if mine is None or ce is None else mine - ce for mine, ce in zip(rare, base_rare)]
                    ),
                    epochs_to_ce=timing["epochs"] if mode == NO_CALIBRATION else None,
                    seeds_reaching_ce=timing["reached"] if mode == NO_CALIBRATION else 0,
                )
            )
    return remedies


def section_remedies(
    sections: Sequence[Section],
    records: Mapping[str, dict[str, Any]],
    calibrated: Mapping[str, RunCalibration],
    dev_runs: DevRuns,
) -> dict[str, list[Remedy]]:
    """Dataset -> its remedies, from every convergence section (full training set only)."""
    by_dataset: dict[str, list[Remedy]] = {}
    for section in sections:
        if section.kind != "convergence":
            continue
        for dataset in section.datasets():
            cell = section.cells(dataset).get(1.0, [])
            by_dataset.setdefault(dataset, []).extend(
                compare_with_ce(cell, section.calibration, records, calibrated, dev_runs)
            )
    return {dataset: remedies for dataset, remedies in by_dataset.items() if remedies}


def remedy_table(remedies: Sequence[Remedy]) -> list[str]:
    """Markdown: every remedy of one corpus, best mean Δ micro F1 first."""
    lines = [
        "| remedy | seeds | micro F1 | Δ micro F1 to CE | bootstrap 95 % interval | Δ macro F1 | rare-type recall "
        "| Δ rare-type recall | verdict |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for remedy in sorted(remedies, key=lambda remedy: -remedy.delta_f1.mean):
        cells = [
            remedy.name,
            ", ".join(map(str, remedy.seeds)),
            format_stat(remedy.f1),
            format_points(remedy.delta_f1),
            format_interval(remedy.interval),
            format_points(remedy.delta_macro_f1),
            format_stat(remedy.rare_recall),
            format_points(remedy.delta_rare_recall),
            remedy.verdict,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _claim(remedy: Remedy) -> str:
    return (
        f"{remedy.name}: {format_points(remedy.delta_f1)} points micro F1 "
        f"(interval {format_interval(remedy.interval)}; seeds {', '.join(map(str, remedy.seeds))})"
    )


def remedy_statements(dataset: str, remedies: Sequence[Remedy]) -> list[str]:
    """Bullets of what one corpus's numbers support, each with its seed noise and interval."""
    rare = remedies[0].rare_types
    ranked = sorted(remedies, key=lambda remedy: -remedy.delta_f1.mean)
    fewest_seeds = min(len(remedy.seeds) for remedy in remedies)
    lines = []
    if fewest_seeds < PROTOCOL_SEEDS:
        lines.append(
            f"- Rests on as few as {fewest_seeds} of the protocol's {PROTOCOL_SEEDS} seeds"
            + (
                " (with one seed there is no std: the interval covers the sampling of dev sentences, not seed noise)"
                if fewest_seeds == 1
                else ""
            )
            + ": a lead, not a result."
        )
    for verdict in (ABOVE, BELOW):
        found = [remedy for remedy in ranked if remedy.verdict == verdict]
        if found:
            lines.append(
                f"- {verdict[0].upper()}{verdict[1:]} beyond the paired interval and the seed std: "
                + "; ".join(map(_claim, found))
                + "."
            )
    noisy = [remedy for remedy in ranked if remedy.verdict == SEED_NOISE]
    if noisy:
        lines.append(
            "- Interval off 0 but the mean Δ no larger than its seed std (within seed noise): "
            + "; ".join(map(_claim, noisy))
            + "."
        )
    unclear = sum(remedy.verdict == NO_DIFFERENCE for remedy in ranked)
    if unclear:
        lines.append(
            f"- No difference from CE shown (the interval contains 0) for {unclear} of the {len(ranked)} remedies "
            "(verdicts in the table)."
        )
    gains = [
        remedy
        for remedy in ranked
        if remedy.delta_rare_recall is not None
        and remedy.delta_rare_recall.mean > (remedy.delta_rare_recall.std or 0.0)
    ]
    if rare and gains:
        best = sorted(gains, key=lambda remedy: -remedy.delta_rare_recall.mean)[:3]
        lines.append(
            f"- Rare-type recall ({', '.join(rare)}), largest gains over CE (larger than their seed std, where "
            "there are several seeds): "
            + "; ".join(f"{remedy.name} {format_points(remedy.delta_rare_recall)}" for remedy in best)
            + "."
        )
    faster = [
        remedy
        for remedy in ranked
        if remedy.calibration == NO_CALIBRATION and remedy.epochs_to_ce is not None and remedy.seeds_reaching_ce
    ]
    if faster:
        lines.append(
            "- Reach CE's final micro F1 (same seed) during training: "
            + "; ".join(
                f"{remedy.name} after {remedy.epochs_to_ce.mean:.1f} epochs "
                f"({remedy.seeds_reaching_ce} of {len(remedy.seeds)} seeds)"
                for remedy in sorted(faster, key=lambda remedy: remedy.epochs_to_ce.mean)
            )
            + "."
        )
    return [f"### {dataset}", "", *lines]


def remedies_markdown(by_dataset: Mapping[str, Sequence[Remedy]]) -> list[str]:
    """The "Which remedy when" section: per corpus, the statements and the full table."""
    if not by_dataset:
        return []
    lines = [
        "## Which remedy when (convergence)",
        "",
        "Every remedy (loss setting, with or without post-hoc calibration, 2-fold cross-fitted on dev) against",
        "uncalibrated plain CE of the same corpus and seed. Δ is in points, mean ± std over seeds; the interval",
        f"is the paired bootstrap 95 % interval over dev sentences (`{CONTAINS_ZERO}`: contains 0); the verdict",
        "needs the interval off 0 and the mean Δ above its seed std. Rare types: fewer training entities than",
        "the mean per type; rare-type recall is their unweighted mean dev recall. Only what these numbers",
        "support is stated.",
    ]
    for dataset, remedies in by_dataset.items():
        lines += ["", *remedy_statements(dataset, remedies), "", *remedy_table(remedies)]
    return lines
