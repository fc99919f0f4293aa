"""The loss study's report: run records -> mean ± std over seeds -> markdown, JSON and PNG plots.

Each study config (`configs/study/*.yaml`) is one section. Its records are found by expanding
the config again (`study.expand_study`) and looking up the run ids, so a record shared by two
configs appears in both, and records of other grids are ignored. Within a dataset (and keep
ratio), rows are loss settings with plain CE first as the reference; the standard deviation is
the sample one (ddof=1) over seeds, absent for a single seed; a difference to CE smaller than the
larger of the two standard deviations is marked `~`, within seed noise.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

from ner_imbalance.constants import ENTITY_METRICS, OVERALL_METRICS
from ner_imbalance.study import (
    DEFAULT_RESULTS_DIR,
    SweepIncompleteError,
    best_settings,
    expand_study,
    load_records,
    load_study_config,
    loss_label,
    section_kind,
)

__all__ = [
    "Section",
    "SettingSummary",
    "Stat",
    "aggregate",
    "best_settings",
    "build_sections",
    "comparison_table",
    "mean_std",
    "plot_imbalance",
    "plot_per_type_f1",
    "render_markdown",
    "write_report",
]

NO_VALUE = "—"


@dataclass(frozen=True)
class Stat:
    """Mean and sample standard deviation (ddof=1; None for one value) of `n` values."""

    mean: float
    std: float | None
    n: int


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
        return self.loss == "ce" and self.class_weights == "none" and not self.hyperparameters


def summarize(records: Sequence[Mapping[str, Any]]) -> SettingSummary:
    """Mean ± std over the seeds of one setting's records."""
    first = records[0]
    per_type_names = sorted({name for record in records for name in record["metrics"]["per_type"]})
    return SettingSummary(
        setting_id=first["setting_id"],
        label=loss_label(first["loss"], first["hyperparameters"], first["class_weights"]),
        dataset=first["dataset"],
        entity_keep_ratio=first["entity_keep_ratio"],
        loss=first["loss"],
        hyperparameters=dict(first["hyperparameters"]),
        class_weights=first["class_weights"],
        seeds=sorted(record["seed"] for record in records),
        metrics={name: mean_std(record["metrics"][name] for record in records) for name in OVERALL_METRICS},
        per_type={name: _per_type_stats(records, name) for name in per_type_names},
        support={
            name: int(first["metrics"]["per_type"][name].get("support", 0)) for name in first["metrics"]["per_type"]
        },
        entity_token_share=_optional_stat(
            records, lambda record: (record.get("train_statistics") or {}).get("entity_token_share")
        ),
        train_runtime_s=_optional_stat(records, lambda record: record.get("train_runtime_s")),
    )


def _per_type_stats(records: Sequence[Mapping[str, Any]], entity_type: str) -> dict[str, Stat]:
    scores = [
        record["metrics"]["per_type"][entity_type] for record in records if entity_type in record["metrics"]["per_type"]
    ]
    return {name: mean_std(score[name] for score in scores) for name in ENTITY_METRICS}


def _optional_stat(records: Sequence[Mapping[str, Any]], value_of) -> Stat | None:
    values = [value_of(record) for record in records]
    return mean_std(values) if values and all(value is not None for value in values) else None


def aggregate(records: Iterable[Mapping[str, Any]]) -> list[SettingSummary]:
    """One summary per setting (the records' `setting_id`), in order of first appearance."""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for record in records:
        groups.setdefault(record["setting_id"], []).append(record)
    return [summarize(group) for group in groups.values()]


@dataclass
class Section:
    """The records of one study config, summarized; `blocked` says why it has none yet."""

    config_path: str
    name: str
    title: str
    kind: str
    summaries: list[SettingSummary] = field(default_factory=list)
    runs_expected: int = 0
    runs_finished: int = 0
    blocked: str | None = None

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
            str(path), str(config["name"]), str(config.get("title", config["name"])), section_kind(config)
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


# Markdown


def format_stat(stat: Stat | None) -> str:
    """`60.0 ± 10.0` (percent); `60.0 ± —` for a single seed."""
    if stat is None:
        return NO_VALUE
    spread = NO_VALUE if stat.std is None else f"{stat.std * 100:.1f}"
    return f"{stat.mean * 100:.1f} ± {spread}"


def format_delta(stat: Stat, reference: Stat | None) -> str:
    """Difference of means to the reference in points, with `~` when within seed noise."""
    if reference is None:
        return NO_VALUE
    delta = stat.mean - reference.mean
    spreads = [std for std in (stat.std, reference.std) if std is not None]
    noise_mark = " ~" if spreads and abs(delta) < max(spreads) else ""
    return f"{delta * 100:+.1f}{noise_mark}"


def entity_types(summaries: Sequence[SettingSummary]) -> list[str]:
    """Entity types of the summaries, most frequent in dev first."""
    support: dict[str, int] = {}
    for summary in summaries:
        for name, count in summary.support.items():
            support.setdefault(name, count)
    return sorted(support, key=lambda name: (-support[name], name))


def ordered_rows(summaries: Sequence[SettingSummary]) -> list[SettingSummary]:
    """The CE reference first, then the others in config order."""
    return [summary for summary in summaries if summary.is_reference] + [
        summary for summary in summaries if not summary.is_reference
    ]


def comparison_table(summaries: Sequence[SettingSummary]) -> list[str]:
    """Markdown rows: n, micro F1, micro recall and macro F1 with their Δ to CE, recall per type."""
    rows = ordered_rows(summaries)
    reference = rows[0] if rows and rows[0].is_reference else None
    types = entity_types(rows)
    support = {name: count for summary in rows for name, count in summary.support.items()}
    best_f1 = max(summary.metrics["f1"].mean for summary in rows)
    header = ["loss setting", "n", "micro F1", "Δ F1", "micro R", "Δ R", "macro F1", "Δ macro F1"]
    header += [f"R {name} ({support[name]})" for name in types]
    lines = [_markdown_row(header), _markdown_row(["---"] * len(header))]
    for summary in rows:
        cells = [f"{summary.label} (reference)" if summary is reference else summary.label, str(summary.n)]
        for metric in ("f1", "recall", "macro_f1"):
            value = format_stat(summary.metrics[metric])
            if metric == "f1" and summary.metrics[metric].mean == best_f1:
                value = f"**{value}**"
            compared_with = None if reference is None or summary is reference else reference.metrics[metric]
            cells += [value, format_delta(summary.metrics[metric], compared_with)]
        cells += [
            format_stat(summary.per_type[name]["recall"]) if name in summary.per_type else NO_VALUE for name in types
        ]
        lines.append(_markdown_row(cells))
    return lines


def _markdown_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def imbalance_overview(summaries_by_ratio: Mapping[float, Sequence[SettingSummary]]) -> list[str]:
    """Rows = loss settings, columns = micro F1 and micro recall at each keep ratio."""
    ratios = list(summaries_by_ratio)
    labels = list(
        dict.fromkeys(
            summary.label for summary in ordered_rows([s for cell in summaries_by_ratio.values() for s in cell])
        )
    )
    header = ["loss setting"] + [f"{name} @ keep {ratio:.0%}" for ratio in ratios for name in ("F1", "R")]
    lines = [_markdown_row(header), _markdown_row(["---"] * len(header))]
    for label in labels:
        cells = [label]
        for ratio in ratios:
            summary = next((s for s in summaries_by_ratio[ratio] if s.label == label), None)
            cells += [format_stat(summary.metrics[name]) if summary else NO_VALUE for name in ("f1", "recall")]
        lines.append(_markdown_row(cells))
    return lines


def imbalance_heading(ratio: float, summaries: Sequence[SettingSummary]) -> str:
    """`keep 30 % of entity sentences: entity tokens 2.1 % of training tokens (O:entity ≈ 46:1)`."""
    heading = f"keep {ratio:.0%} of the training sentences with entities"
    shares = [summary.entity_token_share.mean for summary in summaries if summary.entity_token_share is not None]
    if not shares:
        return heading
    share = statistics.fmean(shares)
    ratio_text = f"{(1 - share) / share:.0f}:1" if share > 0 else "∞"
    return f"{heading}: entity tokens {share:.1%} of training tokens (O:entity ≈ {ratio_text})"


def budget_lines(records: Iterable[Mapping[str, Any]]) -> list[str]:
    """A table of the training budget per dataset, read from the records."""
    by_dataset: dict[str, list[Mapping[str, Any]]] = {}
    for record in records:
        by_dataset.setdefault(record["dataset"], []).append(record)
    header = [
        "dataset",
        "epochs",
        "max_seq_length",
        "batch size",
        "learning rate",
        "seeds",
        "runs",
        "train time per run",
        "device",
    ]
    lines = [_markdown_row(header), _markdown_row(["---"] * len(header))]
    for dataset, group in by_dataset.items():
        training = [record["training"] for record in group]
        runtime = _optional_stat(group, lambda record: record.get("train_runtime_s"))
        cells = [
            dataset,
            _distinct(value.get("num_train_epochs") for value in training),
            _distinct(value.get("max_seq_length") for value in training),
            _distinct(value.get("per_device_train_batch_size") for value in training),
            _distinct(value.get("learning_rate") for value in training),
            _distinct(record["seed"] for record in group),
            str(len(group)),
            NO_VALUE if runtime is None else f"{runtime.mean / 60:.1f} min",
            _distinct(record.get("machine", {}).get("device") for record in group),
        ]
        lines.append(_markdown_row(cells))
    return lines


def _distinct(values: Iterable[Any]) -> str:
    return ", ".join(str(value) for value in sorted(set(values), key=str))


def sweep_winners(section: Section, records: Mapping[str, dict[str, Any]]) -> list[str]:
    """Bullets: per dataset and loss, the setting with the best mean dev micro F1."""
    lines = []
    wanted = {summary.setting_id for summary in section.summaries}
    selected = [record for record in records.values() if record["setting_id"] in wanted]
    for dataset in section.datasets():
        for loss, settings in best_settings(selected, dataset=dataset).items():
            class_weights = settings.pop("class_weights", "none")
            label = loss_label(loss, settings, class_weights)
            summary = next(s for s in section.summaries if s.dataset == dataset and s.label == label)
            lines.append(f"- {dataset}, `{loss}`: `{label}` (micro F1 {format_stat(summary.metrics['f1'])})")
    return lines


def render_markdown(
    sections: Sequence[Section],
    records: Mapping[str, dict[str, Any]],
    images: Mapping[tuple[str, str], str],
    results_dir: str | os.PathLike = DEFAULT_RESULTS_DIR,
) -> str:
    """The whole `docs/results.md`; `images` maps (section name, dataset) to a relative image path."""
    used = {summary.setting_id for section in sections for summary in section.summaries}
    used_records = [record for record in records.values() if record["setting_id"] in used]
    lines = [
        "# Loss study: results",
        "",
        f"Written by `scripts/report_results.py` from {len(used_records)} run records in `{results_dir}`; "
        "do not edit by hand.",
        "",
        "## Budget and method",
        "",
        *budget_lines(used_records),
        "",
        "Every run trains for this fixed budget, with no evaluation during training, and is scored once",
        "on the dev split at the end: the final model, not a best-of-epochs pick. Scores are entity-level",
        "(conlleval mode) on word-level tags, in percent.",
        "",
        "How to read the tables: mean ± sample standard deviation over seeds (`± —` for one seed);",
        "Δ is the difference of means to the CE reference row in points, marked `~` when it is smaller",
        "than the larger standard deviation of the two rows (within seed noise; no mark without any",
        "standard deviation); the best micro F1 of a table is bold; `R <type> (<n>)` is the recall of",
        "an entity type with n gold entities in dev.",
    ]
    unused = len(records) - len(used_records)
    if unused:
        lines += ["", f"{unused} other records in `{results_dir}` belong to no configured grid and are not shown."]
    for section in sections:
        lines += ["", *section_markdown(section, records, images)]
    return "\n".join(lines) + "\n"


def section_markdown(
    section: Section, records: Mapping[str, dict[str, Any]], images: Mapping[tuple[str, str], str]
) -> list[str]:
    lines = [f"## {section.title}", "", f"Config: `{section.config_path}` (experiment `{section.name}`)."]
    if section.blocked:
        return lines + ["", f"No results yet: {section.blocked}"]
    lines[-1] += f" {section.runs_finished} of {section.runs_expected} runs finished."
    if section.kind == "sweep" and section.summaries:
        lines += ["", "Best setting of each loss (mean dev micro F1):", "", *sweep_winners(section, records)]
    for dataset in section.datasets():
        cells = section.cells(dataset)
        lines += ["", f"### {dataset}"]
        if section.kind == "imbalance":
            lines += ["", *imbalance_overview(cells)]
        for ratio, summaries in cells.items():
            if section.kind == "imbalance":
                lines += ["", f"#### {imbalance_heading(ratio, summaries)}"]
            lines += ["", *comparison_table(summaries)]
        if (section.name, dataset) in images:
            lines += ["", f"![{section.kind} plot, {dataset}]({images[section.name, dataset]})"]
    return lines


# Plots


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
    return _save(figure, path)


def plot_imbalance(
    summaries_by_ratio: Mapping[float, Sequence[SettingSummary]], path: str | os.PathLike, title: str
) -> Path:
    """Micro F1 and micro recall against the training entity-token share (or keep ratio), one line per loss."""
    summaries = [summary for cell in summaries_by_ratio.values() for summary in cell]
    use_share = all(summary.entity_token_share is not None for summary in summaries)

    def x_of(summary: SettingSummary) -> float:
        return summary.entity_token_share.mean * 100 if use_share else summary.entity_keep_ratio * 100

    ticks = {ratio: statistics.fmean(x_of(summary) for summary in cell) for ratio, cell in summaries_by_ratio.items()}
    figure = Figure(figsize=(10, 4.5), layout="constrained")
    for axes, metric, name in zip(figure.subplots(1, 2), ("f1", "recall"), ("micro F1", "micro recall")):
        for label in dict.fromkeys(summary.label for summary in ordered_rows(summaries)):
            line = sorted((s for s in summaries if s.label == label), key=lambda s: s.entity_keep_ratio)
            y = [s.metrics[metric].mean * 100 for s in line]
            error = [(s.metrics[metric].std or 0.0) * 100 for s in line]
            axes.errorbar([x_of(s) for s in line], y, yerr=error, marker="o", capsize=3, label=label)
        axes.set_xscale("log")
        axes.xaxis.set_minor_locator(NullLocator())
        axes.set_xticks(list(ticks.values()), [f"{x:.1f} %\nkeep {ratio:.0%}" for ratio, x in ticks.items()])
        axes.set_xlabel("entity tokens in training" if use_share else "share of entity sentences kept")
        axes.set_ylabel(f"dev {name} (%)")
        axes.set_title(f"{title}: {name}")
    axes.legend(fontsize="small")
    return _save(figure, path)


def _save(figure: Figure, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    return path


def write_plots(sections: Sequence[Section], img_dir: str | os.PathLike) -> dict[tuple[str, str], Path]:
    """`per_type_f1_<dataset>.png` for comparison sections, `f1_vs_imbalance_<dataset>.png` for imbalance ones."""
    written: dict[tuple[str, str], Path] = {}
    for section in sections:
        for dataset in section.datasets():
            cells = section.cells(dataset)
            if section.kind == "comparison":
                path = Path(img_dir) / f"per_type_f1_{dataset}.png"
                _check_unused(path, written)
                written[section.name, dataset] = plot_per_type_f1(
                    cells[max(cells)], path, f"{dataset}: dev F1 per entity type"
                )
            elif section.kind == "imbalance":
                path = Path(img_dir) / f"f1_vs_imbalance_{dataset}.png"
                _check_unused(path, written)
                written[section.name, dataset] = plot_imbalance(cells, path, dataset)
    return written


def _check_unused(path: Path, written: Mapping[tuple[str, str], Path]) -> None:
    if path in written.values():
        raise ValueError(
            f"two sections of the same kind report {path.stem}: "
            "give each dataset one comparison and one imbalance config"
        )


# Machine-readable aggregates and the whole report


def results_json(sections: Sequence[Section]) -> dict[str, Any]:
    """The aggregates of every section, as plain data (`docs/results.json`)."""
    return {
        "sections": [
            {
                **{key: value for key, value in dataclasses.asdict(section).items() if key != "summaries"},
                "settings": [{**dataclasses.asdict(summary), "n": summary.n} for summary in section.summaries],
            }
            for section in sections
        ]
    }


def write_report(
    config_paths: Sequence[str | os.PathLike],
    results_dir: str | os.PathLike = DEFAULT_RESULTS_DIR,
    output: str | os.PathLike = "docs/results.md",
    img_dir: str | os.PathLike = "docs/img",
) -> list[Path]:
    """Write the markdown report, `results.json` beside it and the plots; return the paths written."""
    records = load_records(results_dir)
    sections = build_sections(config_paths, records)
    output = Path(output)
    plots = write_plots(sections, img_dir)
    images = {key: Path(os.path.relpath(path, output.parent)).as_posix() for key, path in plots.items()}
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render_markdown(sections, records, images, results_dir), encoding="utf-8")
    json_path = output.with_suffix(".json")
    json_path.write_text(json.dumps(results_json(sections), indent=2) + "\n", encoding="utf-8")
    return [output, json_path, *plots.values()]
