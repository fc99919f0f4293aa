"""Run records: one JSON file per finished run, with its settings, dev metrics and environment.

The record exists only once the run finished (written atomically), so a rerun skips it; a
failing run leaves `<run_id>.error.txt` instead.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple

from ner_imbalance.atomic import write_json_atomic
from ner_imbalance.constants import TYPE_METRICS
from ner_imbalance.environment import git_commit, library_versions, machine_info
from ner_imbalance.study.grid import RunSpec

DEFAULT_RESULTS_DIR = Path("results/runs")
RECORD_SUFFIX = ".json"
ERROR_SUFFIX = ".error.txt"
BUDGET_FIELDS = (
    "num_train_epochs",
    "max_steps",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "learning_rate",
    "warmup_steps",
    "weight_decay",
    "train_sampling_strategy",
)
RUNTIME_METRICS = frozenset({"runtime", "samples_per_second", "steps_per_second", "epoch"})


class RunArguments(NamedTuple):
    """The four argument objects `run_experiment` takes, in its order."""

    model: Any
    data: Any
    loss: Any
    training: Any


def record_path(results_dir: str | os.PathLike, run_id: str) -> Path:
    return Path(results_dir) / f"{run_id}{RECORD_SUFFIX}"


def error_path(results_dir: str | os.PathLike, run_id: str) -> Path:
    return Path(results_dir) / f"{run_id}{ERROR_SUFFIX}"


def is_finished(results_dir: str | os.PathLike, run_id: str) -> bool:
    """A record exists only for a finished run."""
    return record_path(results_dir, run_id).is_file()


def write_record(results_dir: str | os.PathLike, record: Mapping[str, Any]) -> Path:
    """Write `<run_id>.json` atomically: a crash leaves either the whole record or none."""
    path = record_path(results_dir, record["run_id"])
    write_json_atomic(path, record, sort_keys=True)
    return path


def load_records(results_dir: str | os.PathLike = DEFAULT_RESULTS_DIR) -> dict[str, dict[str, Any]]:
    """Run id -> record for every record in `results_dir` (none if the folder does not exist)."""
    records = {}
    for path in sorted(Path(results_dir).glob(f"*{RECORD_SUFFIX}")):
        record = json.loads(path.read_text(encoding="utf-8"))
        records[record["run_id"]] = record
    return records


def dev_metrics(eval_metrics: Mapping[str, float], prefix: str = "eval_") -> dict[str, Any]:
    """Trainer metrics without the prefix and runtimes; per-type scores under `per_type`.

    An entity type is any name with a `<type>_support` metric, so types with `-` or `_` in
    their names (creative-work) are kept whole.
    """
    metrics = {key[len(prefix) :]: value for key, value in eval_metrics.items() if key.startswith(prefix)}
    entity_types = sorted(key[: -len("_support")] for key in metrics if key.endswith("_support"))
    per_type: dict[str, dict[str, float]] = {}
    for entity_type in entity_types:
        per_type[entity_type] = {
            name: metrics.pop(f"{entity_type}_{name}") for name in TYPE_METRICS if f"{entity_type}_{name}" in metrics
        }
    overall = {key: value for key, value in metrics.items() if key not in RUNTIME_METRICS}
    return {**overall, "per_type": per_type}


def build_record(
    spec: RunSpec,
    results: Mapping[str, Mapping[str, float]],
    arguments: RunArguments,
    train_statistics: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON record of a finished run: its settings, dev metrics, timings and environment."""
    if "eval" not in results:
        raise ValueError(
            f"{spec.run_id}: the run returned no dev metrics ('eval'); does the dataset name a validation_file?"
        )
    training = {name: getattr(arguments.training, name) for name in BUDGET_FIELDS}
    return {
        "run_id": spec.run_id,
        "setting_id": spec.setting_id,
        "experiment": spec.experiment,
        "dataset": spec.dataset,
        "entity_keep_ratio": spec.entity_keep_ratio,
        "loss": spec.loss,
        "hyperparameters": spec.hyperparameters,
        "class_weights": spec.class_weights,
        "seed": spec.seed,
        "data": spec.data,
        "model": spec.model,
        "training": {**training, **spec.training, "max_seq_length": arguments.data.max_seq_length},
        "loss_arguments": dataclasses.asdict(arguments.loss),
        "metrics": dev_metrics(results["eval"]),
        "train_runtime_s": results.get("train", {}).get("train_runtime"),
        "eval_runtime_s": results["eval"].get("eval_runtime"),
        "train_statistics": train_statistics,
        "git_commit": git_commit(),
        "versions": library_versions(),
        "machine": machine_info(_device_type(arguments.training)),
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _device_type(training_args: Any) -> str:
    device = getattr(training_args, "device", None)
    return getattr(device, "type", None) or "cpu"
