"""Seed ensembles of the study's cells, re-decoded from the runs' stored dev logits (no retraining).

A cell is one loss setting on one dataset at one keep ratio (a `SettingSummary`); it has an ensemble when
at least `ENSEMBLE_MIN_SEEDS` of its seeds kept their word-level dev logits (`<run_id>.logits.npz`). With
`x^s_t` the logits of seed s = 1..S at dev word t, the ensemble's score of label j is the mean of the
seeds' log-probabilities,

    l_t(j) = (1/S) sum_s log softmax(x^s_t)(j),   log softmax(x)(j) = x(j) - log sum_k exp x(k),

so a word's ensemble probability is `softmax(l_t)`, the renormalised geometric mean of the seeds'
probabilities. The ensemble's tags are the Viterbi path of `l` (the report's decoding; the scheme read
from the labels), scored as every tagging of the report is (`scoring.DevScorer`, conlleval mode): micro
F1 `2C / (P + G)` over all entities, macro F1 the mean over the types found in gold or predictions of
`2C_c / (P_c + G_c)`.

The gain of a cell is `Δ = F1(ensemble) - (1/S) sum_s F1(seed s)`, the seeds scored under Viterbi too
(`decoding.RunDecodings`). Its interval resamples dev sentences with the draws of every paired interval of
the report (`evaluation.bootstrap.paired_bootstrap`, its default resamples and seed): on resample b,
`Δ_b = F1_b(ensemble) - (1/S) sum_s F1_b(seed s) = (1/S) sum_s [F1_b(ensemble) - F1_b(seed s)]`, which is
`paired_bootstrap` with the ensemble paired with each seed; the interval is the 2.5 and 97.5 percentiles
of `Δ_b`.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ner_imbalance.calibration.scan import Decoder
from ner_imbalance.constants import VITERBI
from ner_imbalance.evaluation.bootstrap import macro_f1, micro_f1, paired_bootstrap
from ner_imbalance.study.convergence import format_interval, records_by_seed
from ner_imbalance.study.decoding import RunDecodings
from ner_imbalance.study.dev_runs import DevRuns
from ner_imbalance.study.records import DevOutputs, require_dev_outputs
from ner_imbalance.study.scoring import DevScorer, ScoredTagging
from ner_imbalance.study.summary import Section, SettingSummary, ordered_rows
from ner_imbalance.tags import detect_scheme

ENSEMBLE_MIN_SEEDS = 3
ENSEMBLE_PURPOSE = "the seed ensembles"
ENSEMBLE_METRICS = {"f1": micro_f1, "macro_f1": macro_f1}
"""The scores of a cell's ensemble, each with the bootstrap score of its resampled counts."""
ENSEMBLES_KEY = "seed_ensembles"
"""The key of the cells' ensembles in `results.json`."""


def mean_log_probabilities(logits: Sequence[np.ndarray]) -> np.ndarray:
    """`[num_words, num_labels]` float64: the mean over runs of each run's `log softmax` of its word logits,
    `x - m - log sum_k exp(x(k) - m)` with `m` the word's largest logit (no overflow)."""
    total = np.zeros(np.shape(logits[0]), dtype=np.float64)
    for run_logits in logits:
        run_logits = np.asarray(run_logits, dtype=np.float64)
        shifted = run_logits - run_logits.max(axis=1, keepdims=True)
        total += shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return total / len(logits)


def ensemble_tagging(outputs: Sequence[DevOutputs]) -> ScoredTagging:
    """The seeds' ensemble of one cell: Viterbi of `mean_log_probabilities`, scored against the gold of the
    dev words (`DevScorer`). `ValueError` unless every run scored the same dev words and labels."""
    first = outputs[0]
    for number, other in enumerate(outputs[1:], start=2):
        if (
            other.labels != first.labels
            or not np.array_equal(other.sentence_lengths, first.sentence_lengths)
            or not np.array_equal(other.gold, first.gold)
        ):
            raise ValueError(f"run {number} of the ensemble scored other dev words or labels than run 1")
    log_probabilities = mean_log_probabilities([run.logits for run in outputs])
    tags = Decoder(first.labels, detect_scheme(first.labels), VITERBI)(
        log_probabilities, np.asarray(first.sentence_lengths, dtype=np.int64)
    )
    return DevScorer(first)(tags)


@dataclass(frozen=True)
class CellEnsemble:
    """One cell's seed ensemble against its seeds under Viterbi, per metric of `ENSEMBLE_METRICS`:
    the seeds' scores (`seed_scores`, in `seeds` order), the ensemble's, and the paired interval of Δ."""

    setting_id: str
    dataset: str
    entity_keep_ratio: float
    label: str
    seeds: list[int]
    seed_scores: dict[str, list[float]]
    ensemble_scores: dict[str, float]
    intervals: dict[str, tuple[float, float]]

    def mean_of_seeds(self, metric: str) -> float:
        return statistics.fmean(self.seed_scores[metric])

    def delta(self, metric: str) -> float:
        """The ensemble's score minus the mean of the seeds' scores."""
        return self.ensemble_scores[metric] - self.mean_of_seeds(metric)

    def to_json(self) -> dict[str, Any]:
        return {
            "setting_id": self.setting_id,
            "dataset": self.dataset,
            "entity_keep_ratio": self.entity_keep_ratio,
            "label": self.label,
            "seeds": self.seeds,
            **{
                metric: {
                    "seeds": self.seed_scores[metric],
                    "mean_of_seeds": self.mean_of_seeds(metric),
                    "ensemble": self.ensemble_scores[metric],
                    "delta": self.delta(metric),
                    "interval": list(self.intervals[metric]),
                }
                for metric in ENSEMBLE_METRICS
            },
        }


def compare_ensemble(
    summary: SettingSummary, seeds: Sequence[int], ensemble: ScoredTagging, seed_runs: Sequence[RunDecodings]
) -> CellEnsemble:
    """The cell's ensemble against its seeds' Viterbi decodings (`seed_runs`, in `seeds` order), with the
    paired interval of Δ of each metric (the ensemble paired with each seed, see the module)."""
    seed_scores, ensemble_scores, intervals = {}, {}, {}
    for metric, score in ENSEMBLE_METRICS.items():
        seed_scores[metric] = [run.scores[VITERBI][metric] for run in seed_runs]
        ensemble_scores[metric] = ensemble.scores[metric]
        ensemble_counts = ensemble.type_counts if metric == "macro_f1" else ensemble.counts
        intervals[metric] = paired_bootstrap(
            [ensemble_counts] * len(seed_runs),
            [run.resampling_counts(VITERBI, metric) for run in seed_runs],
            score=score,
        )
    return CellEnsemble(
        setting_id=summary.setting_id,
        dataset=summary.dataset,
        entity_keep_ratio=summary.entity_keep_ratio,
        label=summary.label,
        seeds=list(seeds),
        seed_scores=seed_scores,
        ensemble_scores=ensemble_scores,
        intervals=intervals,
    )


def ensemble_cells(
    sections: Sequence[Section], records: Mapping[str, Mapping[str, Any]], dev_runs: DevRuns
) -> list[tuple[SettingSummary, dict[int, str]]]:
    """Each cell of the sections (once, where it first appears; per dataset and keep ratio, CE first) with
    the run ids of its seeds (of every section showing it) whose dev logits are stored, if there are at least
    `ENSEMBLE_MIN_SEEDS`."""
    seeds_of: dict[str, set[int]] = {}
    first_summary: dict[str, SettingSummary] = {}
    for section in sections:
        for dataset in section.datasets():
            for summaries in section.cells(dataset).values():
                for summary in ordered_rows(summaries):
                    first_summary.setdefault(summary.setting_id, summary)
                    seeds_of.setdefault(summary.setting_id, set()).update(summary.seeds)
    cells = []
    for setting_id, summary in first_summary.items():
        by_seed = records_by_seed(records, setting_id)
        run_ids = {
            seed: by_seed[seed]["run_id"]
            for seed in sorted(seeds_of[setting_id])
            if seed in by_seed and dev_runs.has_outputs(by_seed[seed]["run_id"])
        }
        if len(run_ids) >= ENSEMBLE_MIN_SEEDS:
            cells.append((summary, run_ids))
    return sorted(cells, key=lambda cell: (cell[0].dataset, -cell[0].entity_keep_ratio))


def cell_ensembles(
    sections: Sequence[Section], records: Mapping[str, Mapping[str, Any]], dev_runs: DevRuns
) -> list[CellEnsemble]:
    """The seed ensemble of every cell of `ensemble_cells`: each seed's stored outputs read once, the
    ensemble decoded once, the seeds' Viterbi decodings taken from `dev_runs`."""
    ensembles = []
    for summary, run_ids in ensemble_cells(sections, records, dev_runs):
        outputs = [require_dev_outputs(dev_runs.results_dir, run_id, ENSEMBLE_PURPOSE) for run_id in run_ids.values()]
        seed_runs = [dev_runs.decodings(run_id) for run_id in run_ids.values()]
        ensembles.append(compare_ensemble(summary, list(run_ids), ensemble_tagging(outputs), seed_runs))
    return ensembles


def _points(value: float) -> str:
    return f"{value * 100:.1f}"


def ensembles_markdown(ensembles: Sequence[CellEnsemble]) -> list[str]:
    """The report's last section: one row per cell, then the mean Δ per dataset and keep ratio; [] without cells."""
    if not ensembles:
        return []
    lines = [
        "## Seed ensembles",
        "",
        f"Every cell with at least {ENSEMBLE_MIN_SEEDS} seeds of stored dev logits, ensembled from them (no "
        "retraining): each word's log-probabilities (log-softmax of each seed's logits) averaged over the seeds, "
        "then decoded with Viterbi, against the seeds themselves under Viterbi. `mean of seeds`: the mean of the "
        "seeds' F1; Δ: the ensemble's F1 minus that mean, in points, with the paired bootstrap 95 % interval "
        "over dev sentences (the same resamples as the report's other paired intervals; on each, the ensemble's "
        "F1 minus the mean of the seeds' F1; `0∈`: it contains 0).",
        "",
        "| dataset | keep | loss setting | n | micro F1, mean of seeds | ensemble | Δ | interval "
        "| macro F1, mean of seeds | ensemble | Δ macro | interval |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for cell in ensembles:
        cells = [cell.dataset, f"{cell.entity_keep_ratio:g}", cell.label, str(len(cell.seeds))]
        for metric in ENSEMBLE_METRICS:
            cells += [
                _points(cell.mean_of_seeds(metric)),
                _points(cell.ensemble_scores[metric]),
                f"{cell.delta(metric) * 100:+.1f}",
                format_interval(cell.intervals[metric]),
            ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Mean Δ over the cells of each dataset and keep ratio; `above 0` / `below 0`: the cells whose interval "
        "lies wholly above / below 0.",
        "",
        "| dataset | keep | cells | mean Δ micro F1 | above 0 | below 0 | mean Δ macro F1 | above 0 | below 0 |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    groups: dict[tuple[str, float], list[CellEnsemble]] = {}
    for cell in ensembles:
        groups.setdefault((cell.dataset, cell.entity_keep_ratio), []).append(cell)
    for (dataset, ratio), group in groups.items():
        cells = [dataset, f"{ratio:g}", str(len(group))]
        for metric in ENSEMBLE_METRICS:
            cells += [
                f"{statistics.fmean(cell.delta(metric) for cell in group) * 100:+.2f}",
                str(sum(cell.intervals[metric][0] > 0 for cell in group)),
                str(sum(cell.intervals[metric][1] < 0 for cell in group)),
            ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def ensembles_appendix(ensembles: Sequence[CellEnsemble]) -> str:
    """The text appended to the end of the report (after its final newline): a blank line and
    `ensembles_markdown`, each line ended; "" without cells, so the report before it is unchanged."""
    lines = ensembles_markdown(ensembles)
    return "\n" + "\n".join(lines) + "\n" if lines else ""


def ensembles_json(ensembles: Sequence[CellEnsemble]) -> dict[str, Any]:
    """`{ENSEMBLES_KEY: [each cell's to_json()]}` to add to `results.json`; {} without cells."""
    return {ENSEMBLES_KEY: [cell.to_json() for cell in ensembles]} if ensembles else {}
