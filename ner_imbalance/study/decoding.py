"""Argmax against BIO-constrained Viterbi, re-scored from every stored run's dev logits (no retraining).

For each run with word-level dev logits (`<run_id>.logits.npz`) the dev tags are decoded twice
from the same float16 logits: `argmax` (each word its best label) and `viterbi` (each sentence's
best tag sequence with valid transitions only, `ner_imbalance.decoding`), and once more with the
`O` bias cross-fitted under Viterbi (`crossfit.crossfit(..., decoding="viterbi")`: chosen on one
half of dev, scored on the other). Every difference is paired: Viterbi against argmax of the same
run, and a setting against CE of the same seed under the same decoding, with the paired bootstrap
95 % interval over dev sentences (`evaluation.bootstrap.paired_bootstrap`), of micro F1 and, in
`viterbi_table`, of macro F1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ner_imbalance.calibration.scan import Decoder
from ner_imbalance.constants import ARGMAX, DECODING_METHODS, VITERBI
from ner_imbalance.evaluation.bootstrap import macro_f1, micro_f1, paired_bootstrap
from ner_imbalance.study.convergence import format_interval, format_points, records_by_seed
from ner_imbalance.study.crossfit import crossfit
from ner_imbalance.study.records import DevOutputs
from ner_imbalance.study.scoring import DevScorer
from ner_imbalance.study.summary import Section, SettingSummary, entity_types, format_stat, mean_std, ordered_rows
from ner_imbalance.tags import detect_scheme

VITERBI_OUTSIDE = "viterbi_outside"
"""Viterbi decoding with the `O` bias cross-fitted under Viterbi."""


@dataclass(frozen=True)
class RunDecodings:
    """One run's dev scores (`evaluate_tags`) and per-sentence entity counts per type (`type_counts`,
    the types of that decoding's `per_type`) under each decoding (and `VITERBI_OUTSIDE`)."""

    scores: dict[str, dict[str, Any]]
    type_counts: dict[str, np.ndarray]

    @property
    def f1(self) -> dict[str, float]:
        """Micro F1 under each decoding."""
        return {method: scores["f1"] for method, scores in self.scores.items()}

    def resampling_counts(self, method: str, metric: str) -> np.ndarray:
        """The per-sentence counts the bootstrap of `metric` resamples: per type for "macro_f1", summed
        over types (`sentence_counts`) for "f1"."""
        type_counts = self.type_counts[method]
        return type_counts if metric == "macro_f1" else type_counts.sum(axis=1)


def decode_run(outputs: DevOutputs, scorer: DevScorer | None = None) -> RunDecodings:
    """Decode one run's stored dev logits with argmax, Viterbi and Viterbi with the cross-fitted `O` bias
    (scored by `scorer`, default: a new `DevScorer` of `outputs`)."""
    scorer = scorer or DevScorer(outputs)
    logits = outputs.logits.astype(np.float32)
    lengths = np.asarray(outputs.sentence_lengths, dtype=np.int64)
    scheme = detect_scheme(outputs.labels)
    scored = {method: scorer(Decoder(outputs.labels, scheme, method)(logits, lengths)) for method in DECODING_METHODS}
    scored[VITERBI_OUTSIDE] = crossfit(outputs, "outside", decoding=VITERBI, scorer=scorer).scored
    return RunDecodings(
        scores={name: tagging.scores for name, tagging in scored.items()},
        type_counts={name: tagging.type_counts for name, tagging in scored.items()},
    )


def decoding_table(
    summaries: Sequence[SettingSummary], records: Mapping[str, Mapping[str, Any]], decoded: Mapping[str, RunDecodings]
) -> list[str]:
    """Markdown rows of one cell: micro F1 under each decoding, Viterbi minus argmax of the same runs,
    and each decoding's difference to CE under the same decoding (paired by seed)."""
    runs_of = _decoded_runs(summaries, records, decoded)
    reference = next((summary for summary in summaries if summary.is_reference), None)
    lines = [
        "| loss setting | n | argmax | Viterbi | Δ Viterbi − argmax | interval | Δ to CE, argmax | interval "
        "| Δ to CE, Viterbi | interval | Viterbi + `outside`, cross-fitted |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for summary in ordered_rows(summaries):
        runs = runs_of[summary.setting_id]
        if not runs:
            continue
        cells = [summary.label, str(len(runs))]
        cells += [format_stat(mean_std(run.f1[method] for run in runs.values())) for method in (ARGMAX, VITERBI)]
        cells += _paired(list(runs.values()), list(runs.values()), VITERBI, ARGMAX)
        ce_runs = runs_of.get(reference.setting_id, {}) if reference is not None else {}
        seeds = sorted(runs.keys() & ce_runs.keys()) if summary is not reference else []
        for method in (ARGMAX, VITERBI):
            cells += _paired([runs[seed] for seed in seeds], [ce_runs[seed] for seed in seeds], method, method)
        cells.append(format_stat(mean_std(run.f1[VITERBI_OUTSIDE] for run in runs.values())))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def viterbi_table(
    summaries: Sequence[SettingSummary], records: Mapping[str, Mapping[str, Any]], decoded: Mapping[str, RunDecodings]
) -> list[str]:
    """Markdown rows of one cell under Viterbi (the decoding the library uses): micro and macro F1,
    each with its difference to CE of the same seeds and the paired bootstrap interval, and the
    recall of each entity type (most frequent in dev first); [] without logits."""
    runs_of = _decoded_runs(summaries, records, decoded)
    reference = next((summary for summary in summaries if summary.is_reference), None)
    ce_runs = runs_of.get(reference.setting_id, {}) if reference is not None else {}
    types = entity_types(summaries)
    header = ["loss setting", "n", "micro F1", "Δ F1", "interval", "macro F1", "Δ macro F1", "interval"]
    lines = [
        "| " + " | ".join(header + [f"R {name}" for name in types]) + " |",
        "| " + " | ".join(["---"] * (len(header) + len(types))) + " |",
    ]
    for summary in ordered_rows(summaries):
        runs = runs_of[summary.setting_id]
        if not runs:
            continue
        seeds = sorted(runs.keys() & ce_runs.keys()) if summary is not reference else []
        paired_runs, paired_references = [runs[seed] for seed in seeds], [ce_runs[seed] for seed in seeds]
        cells = [summary.label, str(len(runs))]
        for metric in ("f1", "macro_f1"):
            cells.append(format_stat(mean_std(run.scores[VITERBI][metric] for run in runs.values())))
            cells += _paired(paired_runs, paired_references, VITERBI, VITERBI, metric=metric)
        for name in types:
            recalls = [run.scores[VITERBI]["per_type"].get(name, {}).get("recall", 0.0) for run in runs.values()]
            cells.append(format_stat(mean_std(recalls)))
        lines.append("| " + " | ".join(cells) + " |")
    return lines if len(lines) > 2 else []


def _decoded_runs(
    summaries: Sequence[SettingSummary], records: Mapping[str, Mapping[str, Any]], decoded: Mapping[str, RunDecodings]
) -> dict[str, dict[int, RunDecodings]]:
    """Setting id -> seed -> the decodings of that run, for the seeds of each summary with stored logits."""
    return {
        summary.setting_id: {
            seed: decoded[record["run_id"]]
            for seed, record in sorted(records_by_seed(records, summary.setting_id).items())
            if seed in summary.seeds and record["run_id"] in decoded
        }
        for summary in summaries
    }


def _paired(
    runs: list[RunDecodings],
    references: list[RunDecodings],
    method: str,
    reference_method: str,
    *,
    metric: str = "f1",
) -> list[str]:
    """`[Δ mean ± std, interval]` of `metric` ("f1", micro, or "macro_f1") of `method` on `runs` minus
    `reference_method` on `references` (same seeds)."""
    if not runs:
        return ["—", "—"]
    delta = mean_std(
        run.scores[method][metric] - other.scores[reference_method][metric] for run, other in zip(runs, references)
    )
    interval = paired_bootstrap(
        [run.resampling_counts(method, metric) for run in runs],
        [other.resampling_counts(reference_method, metric) for other in references],
        score=macro_f1 if metric == "macro_f1" else micro_f1,
    )
    return [format_points(delta), format_interval(interval)]


def decoding_markdown(
    sections: Sequence[Section], records: Mapping[str, Mapping[str, Any]], decoded: Mapping[str, RunDecodings]
) -> list[str]:
    """The report's decoding section: one table per section, dataset and keep ratio with stored logits."""
    lines = [
        "## Decoding: argmax against constrained Viterbi",
        "",
        "Every run with stored dev logits, decoded again from them (no retraining): `argmax` tags each word "
        "with its best label; `viterbi` takes each sentence's best tag sequence with valid transitions only "
        "(no `I-X` after `O` or another type, none first in a sentence). Micro F1 mean ± std over seeds; Δ "
        "in points, paired by run (Viterbi − argmax) or by seed (a setting − CE under the same decoding), "
        "with the paired bootstrap 95 % interval over dev sentences (`0∈`: it contains 0). The last column "
        "adds the `O` bias, 2-fold cross-fitted under Viterbi. Argmax is re-decoded from the float16 logits, "
        "so it can differ from the runs' own (float32) predictions on a few exact ties.",
    ]
    shown: set[tuple[str, ...]] = set()
    for section in sections:
        for dataset in section.datasets():
            for ratio, summaries in section.cells(dataset).items():
                table = decoding_table(summaries, records, decoded)
                rows = tuple(table)
                if len(table) > 2 and rows not in shown:  # a cell two sections share is shown once
                    shown.add(rows)
                    keep = "" if ratio == 1 else f", keep {ratio:g}"
                    lines += ["", f"### {section.title}: {dataset}{keep}", "", *table]
    return lines
