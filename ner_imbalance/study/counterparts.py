"""Each cell against the same recipe with one change undone: the config's `paired_with`.

A study config whose cells change one thing of runs found elsewhere in the study names it under
`paired_with` (checked by `grid.load_study_config`):

- `{learning_rate: 5.0e-5}`: each run is paired with the run of the same seed whose settings are
  the same except the training's learning rate, which is 5e-5;
- `{augment: none}`: with the run of the same seed without training-data augmentation (no
  `augment`, `augment_rate`, nor the `repeat_threshold` that only the augmentation used).

The counterpart is looked up among all records by its settings, not by its config, so the 5e-5
runs of the convergence configs serve the learning-rate cells. Both runs are scored under Viterbi
from their stored dev logits (`decoding.decode_run`), and each difference Δ is the mean over the
paired seeds of (setting − counterpart) with the paired bootstrap 95 % interval over dev
sentences (`evaluation.bootstrap.paired_bootstrap`) of micro F1, macro F1 and the rare types'
recall: the unweighted mean over the rare types (`remedies.rare_types`: fewer training entities
than the mean per type) of each type's recall, `correct / gold`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ner_imbalance.constants import VITERBI
from ner_imbalance.evaluation.bootstrap import macro_f1, micro_f1, paired_bootstrap
from ner_imbalance.study.convergence import format_interval, format_points, records_by_seed
from ner_imbalance.study.decoding import RunDecodings
from ner_imbalance.study.grid import AUGMENT_KEYS
from ner_imbalance.study.remedies import rare_types
from ner_imbalance.study.summary import SettingSummary, format_stat, mean_std, ordered_rows

SETTING_FIELDS = ("dataset", "data", "model", "entity_keep_ratio", "loss", "hyperparameters", "class_weights")
"""The record fields that, with `training` and `sampling`, make a run's settings (all but the seed)."""


def run_settings(record: Mapping[str, Any]) -> dict[str, Any]:
    """The settings of a run that decide its result, the seed left out (`sampling` {} when it has none)."""
    return {
        **{name: record.get(name) for name in SETTING_FIELDS},
        "training": dict(record.get("training") or {}),
        "sampling": dict(record.get("sampling") or {}),
    }


def counterpart_settings(record: Mapping[str, Any], paired_with: Mapping[str, Any]) -> dict[str, Any]:
    """The settings of the run `record` is paired with: its own, with each change of `paired_with` undone."""
    settings = run_settings(record)
    if "learning_rate" in paired_with:
        settings["training"]["learning_rate"] = float(paired_with["learning_rate"])
    if "augment" in paired_with:
        sampling = {key: value for key, value in settings["sampling"].items() if key not in AUGMENT_KEYS}
        if "sentence_sampling" not in sampling:
            sampling.pop("repeat_threshold", None)
        settings["sampling"] = sampling
    return settings


def _settings_key(settings: Mapping[str, Any]) -> str:
    return json.dumps(settings, sort_keys=True)


def counterpart_runs(
    records: Mapping[str, Mapping[str, Any]], setting_id: str, paired_with: Mapping[str, Any]
) -> dict[int, tuple[str, str]]:
    """Seed -> (run id of the setting, run id of its counterpart), for the seeds that have both."""
    runs_by_settings: dict[tuple[str, int], str] = {
        (_settings_key(run_settings(record)), record["seed"]): record["run_id"] for record in records.values()
    }
    pairs = {}
    for seed, record in sorted(records_by_seed(records, setting_id).items()):
        counterpart = runs_by_settings.get((_settings_key(counterpart_settings(record, paired_with)), seed))
        if counterpart is not None and counterpart != record["run_id"]:
            pairs[seed] = (record["run_id"], counterpart)
    return pairs


def rare_recall(counts: np.ndarray) -> np.ndarray:
    """Unweighted mean recall over types from summed counts `[..., num_types, 3]` (correct, predicted, gold).

    A type without gold counts 0; the two sides of a pair share their gold, so it counts 0 on both.
    """
    correct, gold = counts[..., 0], counts[..., 2]
    return np.divide(correct, gold, out=np.zeros(np.shape(correct), dtype=float), where=gold > 0).mean(axis=-1)


def _rare_counts(run: RunDecodings, types: Sequence[str]) -> np.ndarray:
    """`[sentences, len(types), 3]`: the run's per-sentence Viterbi counts of `types`, in that order
    (zeros for a type neither in gold nor predicted)."""
    present = list(run.scores[VITERBI]["per_type"])
    type_counts = run.type_counts[VITERBI]
    counts = np.zeros((len(type_counts), len(types), 3), dtype=type_counts.dtype)
    for column, name in enumerate(types):
        if name in present:
            counts[:, column] = type_counts[:, present.index(name)]
    return counts


def _score(run: RunDecodings, metric: str, types: Sequence[str]) -> float:
    if metric == "rare_recall":
        return float(rare_recall(_rare_counts(run, types).sum(axis=0)))
    return float(run.scores[VITERBI][metric])


def _resampled(run: RunDecodings, metric: str, types: Sequence[str]) -> np.ndarray:
    if metric == "rare_recall":
        return _rare_counts(run, types)
    return run.resampling_counts(VITERBI, metric)


_BOOTSTRAP_SCORES = {"f1": micro_f1, "macro_f1": macro_f1, "rare_recall": rare_recall}


def counterpart_table(
    summaries: Sequence[SettingSummary],
    records: Mapping[str, Mapping[str, Any]],
    decoded: Mapping[str, RunDecodings],
    paired_with: Mapping[str, Any],
) -> list[str]:
    """Markdown rows of one cell: each setting with a counterpart against it, under Viterbi (see the
    module docstring); [] when no setting has a counterpart with stored logits."""
    setting_ids = {summary.setting_id for summary in summaries}
    types = rare_types([record for record in records.values() if record["setting_id"] in setting_ids])
    metrics = ["f1", "macro_f1"] + (["rare_recall"] if types else [])
    names = {"f1": "micro F1", "macro_f1": "macro F1", "rare_recall": "rare-type recall"}
    header = ["loss setting", "paired seeds"]
    for metric in metrics:
        header += [names[metric], f"{names[metric]}, counterpart", "Δ", "interval"]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(["---"] * len(header)) + " |"]
    for summary in ordered_rows(summaries):
        pairs = {
            seed: (decoded[run_id], decoded[counterpart])
            for seed, (run_id, counterpart) in counterpart_runs(records, summary.setting_id, paired_with).items()
            if run_id in decoded and counterpart in decoded
        }
        if not pairs:
            continue
        runs, counterparts = [pair[0] for pair in pairs.values()], [pair[1] for pair in pairs.values()]
        cells = [summary.label, ", ".join(str(seed) for seed in pairs)]
        for metric in metrics:
            ours = [_score(run, metric, types) for run in runs]
            theirs = [_score(run, metric, types) for run in counterparts]
            interval = paired_bootstrap(
                [_resampled(run, metric, types) for run in runs],
                [_resampled(run, metric, types) for run in counterparts],
                score=_BOOTSTRAP_SCORES[metric],
            )
            cells += [
                format_stat(mean_std(ours)),
                format_stat(mean_std(theirs)),
                format_points(mean_std(a - b for a, b in zip(ours, theirs))),
                format_interval(interval),
            ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines if len(lines) > 2 else []


def counterpart_intro(paired_with: Mapping[str, Any]) -> str:
    """The sentence above a `counterpart_table`: what each setting is paired with."""
    changes = []
    if "learning_rate" in paired_with:
        changes.append(f"trained at learning rate {float(paired_with['learning_rate']):g}")
    if "augment" in paired_with:
        changes.append("trained without augmentation")
    return (
        f"Against the same recipe {' and '.join(changes)} (the counterpart; its runs may come from another "
        "config), paired by seed, under Viterbi from the stored dev logits: mean ± std over the paired seeds, "
        "Δ = setting − counterpart in points with the paired bootstrap 95 % interval over dev sentences "
        "(`0∈`: it contains 0). Rare-type recall: the unweighted mean recall of the types with fewer "
        "training entities than the mean per type."
    )
