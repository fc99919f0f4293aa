"""The convergence sections of the report: paired differences to CE, time to reach CE, and the facts.

For each setting and seed, the paired difference is F1(setting, seed s) - F1(CE, seed s); its
mean ± std over seeds is given with the paired bootstrap 95 % interval over dev sentences
(`evaluation.bootstrap.paired_bootstrap`, from the dev outputs kept beside the records), marked `0∈` where the
interval contains 0. "Time to reach CE" is, per seed, the first epoch whose dev F1 is at least
CE's final dev F1 of the same seed, and the training seconds spent until then.

`calibration_markdown` adds, in any section whose config asks for `calibration`, each setting's
uncalibrated and 2-fold cross-fitted scores (`crossfit`), with calibrated minus uncalibrated
paired by run and the same paired bootstrap.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ner_imbalance.calibration.search import NO_CALIBRATION
from ner_imbalance.evaluation.bootstrap import paired_bootstrap
from ner_imbalance.study.crossfit import RunCalibration
from ner_imbalance.study.curves import first_reaching
from ner_imbalance.study.summary import SettingSummary, Stat, format_stat, mean_std, ordered_rows

CONTAINS_ZERO = "0∈"
Records = Mapping[str, dict[str, Any]]
StoredCounts = Callable[[str, str], np.ndarray]
"""(run id, what they are needed for) -> the per-sentence counts of the run's stored dev predictions
(`dev_runs.DevRuns.counts`)."""


def records_by_seed(records: Records, setting_id: str) -> dict[int, dict[str, Any]]:
    return {record["seed"]: record for record in records.values() if record["setting_id"] == setting_id}


def paired_difference(
    setting: SettingSummary, reference: SettingSummary, records: Records, stored_counts: StoredCounts
) -> dict[str, Any]:
    """Δ micro F1 to CE over the seeds both have: mean ± std, and the paired bootstrap interval.

    Every run needs its stored dev outputs (`MissingDevOutputsError` otherwise).
    """
    ours, theirs = records_by_seed(records, setting.setting_id), records_by_seed(records, reference.setting_id)
    seeds = sorted(ours.keys() & theirs.keys())
    if not seeds:
        return {"seeds": [], "delta": None, "interval": None}
    delta = mean_std(ours[seed]["metrics"]["f1"] - theirs[seed]["metrics"]["f1"] for seed in seeds)
    counts = [stored_counts(run[seed]["run_id"], "the paired bootstrap") for run in (ours, theirs) for seed in seeds]
    return {"seeds": seeds, "delta": delta, "interval": paired_bootstrap(counts[: len(seeds)], counts[len(seeds) :])}


def format_points(stat: Stat | None) -> str:
    if stat is None:
        return "—"
    spread = "—" if stat.std is None else f"{stat.std * 100:.1f}"
    return f"{stat.mean * 100:+.1f} ± {spread}"


def format_interval(interval: tuple[float, float] | None) -> str:
    if interval is None:
        return "—"
    low, high = interval
    mark = f" {CONTAINS_ZERO}" if low <= 0 <= high else ""
    return f"[{low * 100:+.1f}, {high * 100:+.1f}]{mark}"


def paired_differences(
    summaries: Sequence[SettingSummary], records: Records, stored_counts: StoredCounts
) -> dict[str, dict[str, Any]] | None:
    """Setting id -> `paired_difference` to CE for every non-reference setting; None without a CE row.

    Computed once per cell, from the counts `stored_counts` keeps of each run.
    """
    rows = ordered_rows(summaries)
    if not rows or not rows[0].is_reference:
        return None
    return {summary.setting_id: paired_difference(summary, rows[0], records, stored_counts) for summary in rows[1:]}


def paired_table(summaries: Sequence[SettingSummary], differences: Mapping[str, dict[str, Any]] | None) -> list[str]:
    """Markdown: per setting, Δ micro F1 to CE (same seed) and its paired bootstrap 95 % interval."""
    if differences is None:
        return ["No CE reference in this cell: no paired differences."]
    lines = [
        "| loss setting | paired seeds | Δ micro F1 to CE | bootstrap 95 % interval |",
        "| --- | --- | --- | --- |",
    ]
    for summary in ordered_rows(summaries)[1:]:
        paired = differences[summary.setting_id]
        seeds = ", ".join(str(seed) for seed in paired["seeds"]) or "—"
        lines.append(
            f"| {summary.label} | {seeds} | {format_points(paired['delta'])} | {format_interval(paired['interval'])} |"
        )
    return lines


def time_to_reach(setting: SettingSummary, reference: SettingSummary, records: Records) -> dict[str, Any]:
    """Per seed, the first epoch (and training seconds) at which the setting reaches CE's final dev F1."""
    ours, theirs = records_by_seed(records, setting.setting_id), records_by_seed(records, reference.setting_id)
    reached, seeds = [], sorted(ours.keys() & theirs.keys())
    for seed in seeds:
        point = first_reaching(ours[seed].get("learning_curve") or [], theirs[seed]["metrics"]["f1"])
        if point is not None:
            reached.append(point)
    return {
        "seeds": len(seeds),
        "reached": len(reached),
        "epochs": mean_std(point["epoch"] for point in reached) if reached else None,
        "seconds": mean_std(point["train_seconds"] for point in reached) if reached else None,
    }


def time_table(summaries: Sequence[SettingSummary], records: Records) -> list[str]:
    """Markdown: epochs and training seconds each setting needs to reach CE's final dev F1 (same seed)."""
    rows = ordered_rows(summaries)
    if not rows or not rows[0].is_reference:
        return []
    lines = [
        "| loss setting | seeds reaching CE's final F1 | epochs | training seconds |",
        "| --- | --- | --- | --- |",
    ]
    for summary in rows:
        timing = time_to_reach(summary, rows[0], records)
        epochs = "—" if timing["epochs"] is None else _plain(timing["epochs"], "{:.1f}")
        seconds = "—" if timing["seconds"] is None else _plain(timing["seconds"], "{:.0f}")
        lines.append(f"| {summary.label} | {timing['reached']} of {timing['seeds']} | {epochs} | {seconds} |")
    return lines


def _plain(stat: Stat, pattern: str) -> str:
    spread = "—" if stat.std is None else pattern.format(stat.std)
    return f"{pattern.format(stat.mean)} ± {spread}"


def facts(
    dataset: str, summaries: Sequence[SettingSummary], differences: Mapping[str, dict[str, Any]] | None
) -> list[str]:
    """Bullets of what the numbers support: settings whose paired interval excludes 0, best first."""
    if differences is None:
        return []
    found = []
    for summary in ordered_rows(summaries)[1:]:
        paired = differences[summary.setting_id]
        if paired["interval"] is not None and not paired["interval"][0] <= 0 <= paired["interval"][1]:
            found.append((paired["delta"].mean, summary.label, paired))
    if not found:
        return [f"- {dataset}: no setting differs from CE in micro F1 beyond the paired 95 % interval."]
    return [
        f"- {dataset}: `{label}` {'above' if mean > 0 else 'below'} CE by {format_points(paired['delta'])} points "
        f"(seeds {', '.join(map(str, paired['seeds']))}; interval {format_interval(paired['interval'])})"
        for mean, label, paired in sorted(found, reverse=True)
    ]


def convergence_markdown(
    dataset: str, summaries: Sequence[SettingSummary], records: Records, stored_counts: StoredCounts
) -> list[str]:
    """The paired table, the time-to-reach table and the facts of one dataset of a convergence section."""
    differences = paired_differences(summaries, records, stored_counts)
    return [
        "",
        "Paired difference to CE (same seed), with the paired bootstrap 95 % interval over dev sentences "
        f"(`{CONTAINS_ZERO}`: the interval contains 0):",
        "",
        *paired_table(summaries, differences),
        "",
        "Epochs and training seconds (evaluation excluded) to reach CE's final dev micro F1 of the same seed:",
        "",
        *time_table(summaries, records),
        "",
        "Facts (micro F1 differences beyond the paired interval):",
        "",
        *facts(dataset, summaries, differences),
    ]


def rarest_type(summaries: Sequence[SettingSummary]) -> tuple[str, int] | None:
    """The entity type with the fewest gold entities in dev (ties by name), and that number."""
    support = {name: count for summary in summaries for name, count in summary.support.items()}
    if not support:
        return None
    name = min(support, key=lambda entity_type: (support[entity_type], entity_type))
    return name, support[name]


def calibration_table(
    summaries: Sequence[SettingSummary],
    records: Records,
    calibrated: Mapping[str, RunCalibration],
    modes: Sequence[str],
) -> list[str]:
    """Markdown: per setting, uncalibrated and cross-fitted (`modes`) scores, and calibrated minus uncalibrated.

    The difference is paired by run (same seed, same model): mean ± std over seeds of Δ micro F1
    and the paired bootstrap 95 % interval over dev sentences (`evaluation.bootstrap.paired_bootstrap`).
    """
    rare = rarest_type(summaries)
    rare_header = f"R {rare[0]} ({rare[1]})" if rare else "R rarest type"
    lines = [
        f"| loss setting | calibration | n | micro F1 | macro F1 | {rare_header} | Δ micro F1 to uncalibrated "
        "| bootstrap 95 % interval |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for summary in ordered_rows(summaries):
        runs = [
            calibrated[record["run_id"]] for _, record in sorted(records_by_seed(records, summary.setting_id).items())
        ]
        for mode in (NO_CALIBRATION, *modes):
            scores = [run.scores[mode] for run in runs]
            cells = [
                summary.label,
                "none" if mode == NO_CALIBRATION else f"`{mode}`, cross-fitted",
                str(len(runs)),
                format_stat(mean_std(score["f1"] for score in scores)),
                format_stat(mean_std(score["macro_f1"] for score in scores)),
                format_stat(mean_std(_recall(score, rare[0]) for score in scores)) if rare else "—",
                "—",
                "—",
            ]
            if mode != NO_CALIBRATION:
                cells[-2] = format_points(
                    mean_std(run.scores[mode]["f1"] - run.scores[NO_CALIBRATION]["f1"] for run in runs)
                )
                cells[-1] = format_interval(
                    paired_bootstrap([run.counts[mode] for run in runs], [run.counts[NO_CALIBRATION] for run in runs])
                )
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def _recall(scores: Mapping[str, Any], entity_type: str) -> float:
    """Recall of `entity_type` in `evaluate_tags` scores (a type with gold entities is always listed)."""
    return scores["per_type"][entity_type]["recall"]


def calibration_markdown(
    summaries: Sequence[SettingSummary],
    records: Records,
    calibrated: Mapping[str, RunCalibration],
    modes: Sequence[str],
) -> list[str]:
    """The calibration table of one cell, with what it means."""
    return [
        "",
        "Post-hoc decision-bias calibration, 2-fold cross-fitted on dev: the bias is chosen on one fixed half "
        "of the dev sentences and scores the other half, and the other way round; the two scored halves are "
        "pooled (no sentence is scored with a bias chosen on it). Δ is calibrated minus uncalibrated for the "
        f"same run, with the paired bootstrap 95 % interval over dev sentences (`{CONTAINS_ZERO}`: it contains 0); "
        "`R <type> (<n>)` is the recall of the rarest entity type in dev:",
        "",
        *calibration_table(summaries, records, calibrated, modes),
    ]
