"""The study's report: section summaries -> `docs/results.md`, `docs/results.json` and the plots.

Within a dataset (and keep ratio), rows are loss settings with plain CE first as the reference;
a difference to CE smaller than the larger of the two standard deviations is marked `~`, within
seed noise.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ner_imbalance.study.convergence import calibration_markdown, convergence_markdown
from ner_imbalance.study.counterparts import counterpart_intro, counterpart_table
from ner_imbalance.study.crossfit import CROSSFIT_SEED, RunCalibration
from ner_imbalance.study.decoding import RunDecodings, decoding_markdown, viterbi_table
from ner_imbalance.study.derived_cache import DerivedCache
from ner_imbalance.study.dev_runs import DevRuns, calibration_modes, section_run_ids
from ner_imbalance.study.ensembles import cell_ensembles, ensembles_appendix, ensembles_json
from ner_imbalance.study.grid import best_settings, loss_label, split_sampling
from ner_imbalance.study.plots import write_plots
from ner_imbalance.study.records import DEFAULT_RESULTS_DIR, load_records
from ner_imbalance.study.remedies import Remedy, remedies_markdown, section_remedies
from ner_imbalance.study.summary import (
    NO_VALUE,
    Section,
    SettingSummary,
    Stat,
    build_sections,
    entity_types,
    format_stat,
    loss_share_curve,
    optional_stat,
    ordered_rows,
)
from ner_imbalance.utils.atomic import write_json_atomic, write_text_atomic
from ner_imbalance.utils.environment import device_label


def format_delta(stat: Stat, reference: Stat | None) -> str:
    """Difference of means to the reference in points, with `~` when within seed noise."""
    if reference is None:
        return NO_VALUE
    delta = stat.mean - reference.mean
    spreads = [std for std in (stat.std, reference.std) if std is not None]
    noise_mark = " ~" if spreads and abs(delta) < max(spreads) else ""
    return f"{delta * 100:+.1f}{noise_mark}"


def markdown_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def markdown_header(cells: Sequence[str]) -> list[str]:
    return [markdown_row(cells), markdown_row(["---"] * len(cells))]


METRIC_HEADERS = {"precision": ("micro P", "Δ P"), "f1": ("micro F1", "Δ F1"), "recall": ("micro R", "Δ R")}
METRIC_HEADERS["macro_f1"] = ("macro F1", "Δ macro F1")
VITERBI_TABLE_INTRO = (
    "Under Viterbi, the library's decoding (re-decoded from the stored dev logits): Δ to CE of the same "
    "seeds (a setting with fewer seeds than CE is paired with CE's runs of those seeds only, so its Δ "
    "is not the difference of the two means), with the paired bootstrap 95 % interval of micro and of "
    "macro F1 over dev sentences; `R <type>`: recall."
)


def comparison_table(
    summaries: Sequence[SettingSummary], metrics: Sequence[str] = ("f1", "recall", "macro_f1")
) -> list[str]:
    """Markdown rows: n, the `metrics` (mean ± std) with their Δ to CE, recall per type."""
    rows = ordered_rows(summaries)
    reference = rows[0] if rows and rows[0].is_reference else None
    types = entity_types(rows)
    support = {name: count for summary in rows for name, count in summary.support.items()}
    best_f1 = max(summary.metrics["f1"].mean for summary in rows)
    header = ["loss setting", "n", *(name for metric in metrics for name in METRIC_HEADERS[metric])]
    header += [f"R {name} ({support[name]})" for name in types]
    lines = markdown_header(header)
    for summary in rows:
        cells = [f"{summary.label} (reference)" if summary is reference else summary.label, str(summary.n)]
        for metric in metrics:
            value = format_stat(summary.metrics[metric])
            if metric == "f1" and summary.metrics[metric].mean == best_f1:
                value = f"**{value}**"
            compared_with = None if reference is None or summary is reference else reference.metrics[metric]
            cells += [value, format_delta(summary.metrics[metric], compared_with)]
        cells += [
            format_stat(summary.per_type[name]["recall"]) if name in summary.per_type else NO_VALUE for name in types
        ]
        lines.append(markdown_row(cells))
    return lines


def imbalance_overview(summaries_by_ratio: Mapping[float, Sequence[SettingSummary]]) -> list[str]:
    """Rows = loss settings, columns = micro F1 and micro recall at each keep ratio."""
    ratios = list(summaries_by_ratio)
    labels = list(
        dict.fromkeys(
            summary.label for summary in ordered_rows([s for cell in summaries_by_ratio.values() for s in cell])
        )
    )
    lines = markdown_header(
        ["loss setting"] + [f"{name} @ keep {ratio:.0%}" for ratio in ratios for name in ("F1", "R")]
    )
    for label in labels:
        cells = [label]
        for ratio in ratios:
            summary = next((s for s in summaries_by_ratio[ratio] if s.label == label), None)
            cells += [format_stat(summary.metrics[name]) if summary else NO_VALUE for name in ("f1", "recall")]
        lines.append(markdown_row(cells))
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


def method_lines(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """How runs are trained and scored; dev is evaluated during training only in runs with a learning curve."""
    final = [
        "on the dev split at the end: the final model, not a best-of-epochs pick. Scores are entity-level",
        "(conlleval mode) on word-level tags, in percent.",
    ]
    if not any(record.get("learning_curve") for record in records):
        return [
            "Every run trains for this fixed budget, with no evaluation during training, and is scored once",
            *final,
        ]
    return [
        "Every run trains for this fixed budget and is scored once",
        *final,
        "The convergence runs also evaluate dev after every epoch, for their learning curves only (no",
        "checkpoint is picked); the short-budget runs (records without a learning curve) have no evaluation",
        "during training.",
    ]


def budget_lines(records: Iterable[Mapping[str, Any]]) -> list[str]:
    """A table of the training budget per dataset and number of epochs, read from the records.

    One row per budget, so that the short-budget and the convergence runs of a dataset are not
    averaged together.
    """
    by_budget: dict[tuple[str, Any], list[Mapping[str, Any]]] = {}
    for record in records:
        by_budget.setdefault((record["dataset"], record["training"].get("num_train_epochs")), []).append(record)
    lines = markdown_header(
        [
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
    )
    for (dataset, _), group in sorted(by_budget.items(), key=lambda item: (item[0][0], float(item[0][1] or 0))):
        training = [record["training"] for record in group]
        runtime = optional_stat(group, lambda record: record.get("train_runtime_s"))
        cells = [
            dataset,
            _distinct(value.get("num_train_epochs") for value in training),
            _distinct(value.get("max_seq_length") for value in training),
            _distinct(value.get("per_device_train_batch_size") for value in training),
            _distinct(value.get("learning_rate") for value in training),
            _distinct(record["seed"] for record in group),
            str(len(group)),
            NO_VALUE if runtime is None else f"{runtime.mean / 60:.1f} min",
            _distinct(device_label(record.get("machine", {})) for record in group),
        ]
        lines.append(markdown_row(cells))
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
            label = loss_label(loss, settings, class_weights, sampling=split_sampling(settings))
            summary = next(s for s in section.summaries if s.dataset == dataset and s.label == label)
            lines.append(f"- {dataset}, `{loss}`: `{label}` (micro F1 {format_stat(summary.metrics['f1'])})")
    return lines


def render_markdown(
    sections: Sequence[Section],
    records: Mapping[str, dict[str, Any]],
    images: Mapping[tuple[str, str], str],
    results_dir: str | os.PathLike = DEFAULT_RESULTS_DIR,
    calibrated: Mapping[str, RunCalibration] | None = None,
    remedies: Mapping[str, Sequence[Remedy]] | None = None,
    decoded: Mapping[str, RunDecodings] | None = None,
    dev_runs: DevRuns | None = None,
) -> str:
    """The whole `docs/results.md`; `images` maps (section name, dataset) to a relative image path.

    `calibrated` holds the cross-fitted calibration of the runs of sections that ask for it
    (`dev_runs.calibration_modes`); `remedies` the "which remedy when" comparisons per dataset
    (`remedies.section_remedies`), shown before the sections; `decoded` each run's dev scores
    under argmax and Viterbi (`decoding.decode_run`), shown last. `dev_runs` (default: a new one of
    `results_dir`) gives the convergence sections the counts of the runs' stored predictions.
    """
    dev_runs = dev_runs or DevRuns(results_dir)
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
        *method_lines(used_records),
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
    if remedies:
        lines += ["", *remedies_markdown(remedies)]
    for section in sections:
        lines += ["", *section_markdown(section, records, images, dev_runs, calibrated or {}, decoded or {})]
    if decoded:
        lines += ["", *decoding_markdown(sections, records, decoded)]
    return "\n".join(lines) + "\n"


def section_markdown(
    section: Section,
    records: Mapping[str, dict[str, Any]],
    images: Mapping[tuple[str, str], str],
    dev_runs: DevRuns,
    calibrated: Mapping[str, RunCalibration] | None = None,
    decoded: Mapping[str, RunDecodings] | None = None,
) -> list[str]:
    """One config's section: per dataset and cell the comparison table, the section kind's own table
    (learning curves, loss shares), calibration, for an imbalance section the scores under
    Viterbi (`decoding.viterbi_table`, from the runs' stored logits), and with `paired_with` each
    setting against its counterpart (`counterparts.counterpart_table`)."""
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
            if section.kind == "convergence":
                lines += ["", *comparison_table(summaries, ("precision", "recall", "f1", "macro_f1"))]
                lines += convergence_markdown(dataset, summaries, records, dev_runs.counts)
            else:
                lines += ["", *comparison_table(summaries)]
            if section.kind == "loss_shares":
                lines += ["", *loss_share_table(summaries, records)]
            if section.calibration:
                lines += calibration_markdown(summaries, records, calibrated or {}, section.calibration)
            viterbi = viterbi_table(summaries, records, decoded or {}) if section.kind == "imbalance" else []
            if viterbi:
                lines += ["", VITERBI_TABLE_INTRO, "", *viterbi]
            paired = (
                counterpart_table(summaries, records, decoded or {}, section.paired_with) if section.paired_with else []
            )
            if paired:
                lines += ["", counterpart_intro(section.paired_with), "", *paired]
        if (section.name, dataset) in images:
            lines += ["", f"![{section.kind} plot, {dataset}]({images[section.name, dataset]})"]
    return lines


def loss_share_table(summaries: Sequence[SettingSummary], records: Mapping[str, dict[str, Any]]) -> list[str]:
    """Markdown rows: each setting's share of the training loss from `O` at its first, middle and last log."""
    lines = ["| loss setting | share of the loss from O: first log | middle | last |", "| --- | --- | --- | --- |"]
    for summary in ordered_rows(summaries):
        curve = loss_share_curve(summary, records)
        if curve:
            points = (curve[0], curve[len(curve) // 2], curve[-1])
            lines.append(markdown_row([summary.label, *(f"{share:.1%} (step {step})" for step, share in points)]))
    return lines


def results_json(
    sections: Sequence[Section],
    records: Mapping[str, dict[str, Any]] | None = None,
    calibrated: Mapping[str, RunCalibration] | None = None,
    remedies: Mapping[str, Sequence[Remedy]] | None = None,
) -> dict[str, Any]:
    """The aggregates of every section, as plain data (`docs/results.json`).

    A section with `calibration` also lists, per run, the biases chosen on each dev half and
    the pooled scores of each mode (`none`: uncalibrated); `remedies`, when there are any, are
    listed per dataset under `remedies`.
    """
    data: dict[str, Any] = {
        "sections": [_section_json(section, records or {}, calibrated or {}) for section in sections]
    }
    if remedies:
        data["remedies"] = {
            dataset: [remedy.to_json() for remedy in dataset_remedies] for dataset, dataset_remedies in remedies.items()
        }
    return data


def _summary_json(summary: SettingSummary) -> dict[str, Any]:
    """A setting's summary for results.json; `sampling` only where it was used (older files unchanged)."""
    fields = {**dataclasses.asdict(summary), "n": summary.n}
    if not summary.sampling:
        del fields["sampling"]
    return fields


def _section_json(
    section: Section, records: Mapping[str, dict[str, Any]], calibrated: Mapping[str, RunCalibration]
) -> dict[str, Any]:
    data = {
        **{
            key: value
            for key, value in dataclasses.asdict(section).items()
            if key not in ("summaries", "calibration") and (key != "paired_with" or value)
        },
        "settings": [_summary_json(summary) for summary in section.summaries],
    }
    if section.calibration:
        data["calibration"] = {
            "modes": section.calibration,
            "crossfit_seed": CROSSFIT_SEED,
            "runs": {
                record["run_id"]: calibrated[record["run_id"]].to_json(section.calibration)
                for summary in section.summaries
                for record in records.values()
                if record["setting_id"] == summary.setting_id and record["seed"] in summary.seeds
            },
        }
    return data


def write_report(
    config_paths: Sequence[str | os.PathLike],
    results_dir: str | os.PathLike = DEFAULT_RESULTS_DIR,
    output: str | os.PathLike = "docs/results.md",
    img_dir: str | os.PathLike = "docs/img",
    cache_dir: str | os.PathLike | None = None,
) -> list[Path]:
    """Write the markdown report, `results.json` beside it and the plots; return the paths written.

    Every run's stored dev outputs are read and derived once (`dev_runs.DevRuns`, one process per core),
    or read back from `cache_dir` (`derived_cache.DerivedCache`; None: no disk cache) where an earlier
    report derived them.
    """
    records = load_records(results_dir)
    sections = build_sections(config_paths, records)
    output = Path(output)
    dev_runs = DevRuns(results_dir, cache=None if cache_dir is None else DerivedCache(cache_dir))
    modes = calibration_modes(sections, records)
    decoded_runs = [run_id for run_id in section_run_ids(sections, records) if dev_runs.has_outputs(run_id)]
    dev_runs.derive(modes, decoded_runs)
    calibrated = dev_runs.calibrated(modes)
    written_plots = write_plots(sections, img_dir, records, calibrated)
    images = {key: Path(os.path.relpath(path, output.parent)).as_posix() for key, path in written_plots.items()}
    output.parent.mkdir(parents=True, exist_ok=True)
    remedies = section_remedies(sections, records, calibrated, dev_runs)
    decoded = dev_runs.decoded(decoded_runs)
    markdown = render_markdown(sections, records, images, results_dir, calibrated, remedies, decoded, dev_runs)
    ensembles = cell_ensembles(sections, records, dev_runs)
    write_text_atomic(output, markdown + ensembles_appendix(ensembles))
    aggregates = {**results_json(sections, records, calibrated, remedies), **ensembles_json(ensembles)}
    json_path = write_json_atomic(output.with_suffix(".json"), aggregates)
    return [output, json_path, *written_plots.values()]
