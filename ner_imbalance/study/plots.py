"""The report's figures (matplotlib's object API, no global pyplot state): PNG files in `docs/img/`."""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

from ner_imbalance.study.crossfit import RunCalibration
from ner_imbalance.study.summary import Section, SettingSummary, entity_types, loss_share_curve, ordered_rows

PLOTTED_METRICS = ("f1", "recall")
"""The imbalance plot's panels: dev micro F1 and micro recall."""


def plot_per_type_f1(summaries: Sequence[SettingSummary], path: str | os.PathLike, title: str) -> Path:
    """Grouped bars: F1 of each entity type (x) per loss setting, mean over seeds, std as error bars."""
    rows = ordered_rows(summaries)
    types = entity_types(rows)
    figure = Figure(figsize=(max(6.0, 1.4 * len(types) + 2), 4.5), layout="constrained")
    axes = figure.subplots()
    width = 0.8 / max(len(rows), 1)
    for index, summary in enumerate(rows):
        stats = [summary.per_type.get(name, {}).get("f1") for name in types]
        positions = [position + (index - (len(rows) - 1) / 2) * width for position in range(len(types))]
        axes.bar(
            positions,
            [stat.mean * 100 if stat else math.nan for stat in stats],
            width,
            yerr=[(stat.std or 0.0) * 100 if stat else 0.0 for stat in stats],
            capsize=2,
            label=f"{summary.label} (n={summary.n})",
        )
    axes.set_xticks(range(len(types)), types)
    axes.set_ylabel("dev F1 (%)")
    axes.set_title(title)
    axes.legend(fontsize="small")
    return save_figure(figure, path)


def outside_to_entity_ratio(summary: SettingSummary) -> float | None:
    """The O:entity token ratio of the setting's training split (mean entity share over seeds), or None."""
    share = summary.entity_token_share
    return None if share is None or share.mean <= 0 else (1 - share.mean) / share.mean


def plot_imbalance(
    summaries_by_ratio: Mapping[float, Sequence[SettingSummary]],
    path: str | os.PathLike,
    title: str,
    calibrated_scores: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None,
) -> Path:
    """Micro F1 and micro recall against the training O:entity token ratio (log scale), one line per loss.

    Without the training statistics in the records, the x axis is the share of entity sentences kept.
    `calibrated_scores` (`calibrated_means`: setting id -> mode -> metric -> mean over seeds) adds a
    dashed line per setting and calibration mode, in the colour of the uncalibrated one.
    """
    summaries = [summary for cell in summaries_by_ratio.values() for summary in cell]
    use_ratio = all(outside_to_entity_ratio(summary) is not None for summary in summaries)

    def x_of(summary: SettingSummary) -> float:
        return outside_to_entity_ratio(summary) if use_ratio else summary.entity_keep_ratio * 100

    ticks = {ratio: statistics.fmean(x_of(summary) for summary in cell) for ratio, cell in summaries_by_ratio.items()}
    tick_labels = [f"{x:.0f}:1\nkeep {ratio:.0%}" if use_ratio else f"{x:.0f} %" for ratio, x in ticks.items()]
    figure = Figure(figsize=(10, 4.5), layout="constrained")
    for axes, metric, name in zip(figure.subplots(1, 2), PLOTTED_METRICS, ("micro F1", "micro recall")):
        for label in dict.fromkeys(summary.label for summary in ordered_rows(summaries)):
            line = sorted((s for s in summaries if s.label == label), key=lambda s: x_of(s))
            y = [s.metrics[metric].mean * 100 for s in line]
            error = [(s.metrics[metric].std or 0.0) * 100 for s in line]
            drawn = axes.errorbar([x_of(s) for s in line], y, yerr=error, marker="o", capsize=3, label=label)
            modes = dict.fromkeys(mode for s in line for mode in (calibrated_scores or {}).get(s.setting_id, {}))
            for mode in modes:
                points = [(x_of(s), calibrated_scores[s.setting_id][mode][metric] * 100) for s in line]
                axes.plot(
                    *zip(*points),
                    linestyle="--",
                    marker="x",
                    color=drawn.lines[0].get_color(),
                    label=f"{label} + {mode}",
                )
        axes.set_xscale("log")
        axes.xaxis.set_minor_locator(NullLocator())
        axes.set_xticks(list(ticks.values()), tick_labels)
        axes.set_xlabel(
            "O:entity token ratio in training (log scale)" if use_ratio else "share of entity sentences kept"
        )
        axes.set_ylabel(f"dev {name} (%)")
        axes.set_title(f"{title}: {name}")
    axes.legend(fontsize="small")
    return save_figure(figure, path)


def plot_learning_curves(
    summaries: Sequence[SettingSummary], records: Mapping[str, dict[str, Any]], path: str | os.PathLike, title: str
) -> Path:
    """Dev micro F1 per epoch (left) and against training seconds (right), one line per setting, mean over seeds."""
    figure = Figure(figsize=(11, 4.5), layout="constrained")
    by_epoch, by_time = figure.subplots(1, 2)
    for summary in ordered_rows(summaries):
        curves = [
            record.get("learning_curve") or []
            for record in records.values()
            if record["setting_id"] == summary.setting_id
        ]
        length = min((len(curve) for curve in curves), default=0)
        if not length:
            continue
        epochs = [statistics.fmean(curve[index]["epoch"] for curve in curves) for index in range(length)]
        seconds = [statistics.fmean(curve[index]["train_seconds"] for curve in curves) for index in range(length)]
        f1 = [statistics.fmean(curve[index]["f1"] for curve in curves) * 100 for index in range(length)]
        label = f"{summary.label} (n={len(curves)})"
        by_epoch.plot(epochs, f1, marker="o", label=label)
        by_time.plot(seconds, f1, marker="o", label=label)
    by_epoch.set_xlabel("epoch")
    by_time.set_xlabel("training seconds (evaluation excluded)")
    for axes in (by_epoch, by_time):
        axes.set_ylabel("dev micro F1 (%)")
        axes.grid(alpha=0.3)
    by_epoch.set_title(f"{title}: dev F1 per epoch")
    by_time.set_title(f"{title}: dev F1 against training time")
    by_time.legend(fontsize="small")
    return save_figure(figure, path)


def plot_loss_shares(
    summaries: Sequence[SettingSummary], records: Mapping[str, dict[str, Any]], path: str | os.PathLike, title: str
) -> Path:
    """The share of the training loss from `O` tokens against the optimizer step, one line per setting
    (its lowest seed, from the values logged during training)."""
    figure = Figure(figsize=(7.5, 4.5), layout="constrained")
    axes = figure.subplots()
    for summary in ordered_rows(summaries):
        curve = loss_share_curve(summary, records)
        if curve:
            steps, shares = zip(*curve)
            axes.plot(steps, [share * 100 for share in shares], label=summary.label)
    axes.set_xlabel("optimizer step")
    axes.set_ylabel("share of the training loss from O tokens (%)")
    axes.set_ylim(0, 100)
    axes.grid(alpha=0.3)
    axes.set_title(title)
    axes.legend(fontsize="small")
    return save_figure(figure, path)


def calibrated_means(
    summaries: Sequence[SettingSummary],
    records: Mapping[str, dict[str, Any]],
    calibrated: Mapping[str, RunCalibration],
    modes: Sequence[str],
) -> dict[str, dict[str, dict[str, float]]]:
    """Setting id -> calibration mode -> micro F1 and recall, mean over the setting's seeds."""
    means: dict[str, dict[str, dict[str, float]]] = {}
    for summary in summaries if modes else []:
        runs = [
            calibrated[record["run_id"]]
            for record in records.values()
            if record["setting_id"] == summary.setting_id and record["seed"] in summary.seeds
        ]
        if runs:
            means[summary.setting_id] = {
                mode: {metric: statistics.fmean(run.scores[mode][metric] for run in runs) for metric in PLOTTED_METRICS}
                for mode in modes
            }
    return means


def save_figure(figure: Figure, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    return path


PLOT_NAMES = {
    "comparison": "per_type_f1",
    "imbalance": "f1_vs_imbalance",
    "loss_shares": "loss_share",
    "convergence": "learning_curves",
}
"""The figure of each section kind (a sweep has none), the start of its file name."""


def write_plots(
    sections: Sequence[Section],
    img_dir: str | os.PathLike,
    records: Mapping[str, dict[str, Any]],
    calibrated: Mapping[str, RunCalibration] | None = None,
) -> dict[tuple[str, str], Path]:
    """`per_type_f1_<dataset>.png` for comparison sections, `f1_vs_imbalance_<dataset>.png` for imbalance
    ones (with the section's cross-fitted calibration modes as dashed lines), `learning_curves_<dataset>.png`
    for convergence ones, `loss_share_<dataset>.png` for loss-share ones; `<kind>_<section name>_<dataset>.png`
    for a later section of a kind that already reports the dataset."""
    written: dict[tuple[str, str], Path] = {}
    for section in sections:
        if section.kind not in PLOT_NAMES:
            continue
        for dataset in section.datasets():
            path = _unused_path(Path(img_dir), PLOT_NAMES[section.kind], section.name, dataset, written)
            cells = section.cells(dataset)
            if section.kind == "comparison":
                written[section.name, dataset] = plot_per_type_f1(
                    cells[max(cells)], path, f"{dataset}: dev F1 per entity type"
                )
            elif section.kind == "imbalance":
                summaries = [summary for cell in cells.values() for summary in cell]
                means = calibrated_means(summaries, records, calibrated or {}, section.calibration)
                written[section.name, dataset] = plot_imbalance(cells, path, dataset, means)
            elif section.kind == "loss_shares":
                written[section.name, dataset] = plot_loss_shares(
                    cells[max(cells)], records, path, f"{dataset}: share of the training loss from O"
                )
            else:
                written[section.name, dataset] = plot_learning_curves(cells[max(cells)], records, path, dataset)
    return written


def _unused_path(
    img_dir: Path, figure: str, section_name: str, dataset: str, written: Mapping[tuple[str, str], Path]
) -> Path:
    """`<figure>_<dataset>.png`, or, when an earlier section of the kind already wrote it,
    `<figure>_<section name>_<dataset>.png`."""
    path = img_dir / f"{figure}_{dataset}.png"
    return path if path not in written.values() else img_dir / f"{figure}_{section_name}_{dataset}.png"
