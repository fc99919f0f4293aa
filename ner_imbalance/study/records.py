"""Run records: one JSON file per finished run, with its settings, dev metrics and environment.

The record exists only once the run finished (written atomically), so a rerun skips it; a
failing run leaves `<run_id>.error.txt` instead. Beside the record, `<run_id>.logits.npz` keeps
the run's word-level dev outputs (`DevOutputs`), written before the record: calibration and the
paired bootstrap of the report are computed from them after the fact.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ner_imbalance.constants import TYPE_METRICS
from ner_imbalance.study.grid import RunSpec
from ner_imbalance.utils.atomic import atomic_open, write_json_atomic
from ner_imbalance.utils.environment import git_commit, library_versions, machine_info

DEFAULT_RESULTS_DIR = Path("results/runs")
RECORD_SUFFIX = ".json"
ERROR_SUFFIX = ".error.txt"
DEV_OUTPUTS_SUFFIX = ".logits.npz"
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


class MissingDevOutputsError(FileNotFoundError):
    """A run whose report needs its `<run_id>.logits.npz` and has none."""


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


def dev_outputs_path(results_dir: str | os.PathLike, run_id: str) -> Path:
    return Path(results_dir) / f"{run_id}{DEV_OUTPUTS_SUFFIX}"


@dataclass(frozen=True)
class DevOutputs:
    """A run's word-level dev outputs: logits, gold and predicted label ids, one row per word.

    `logits` is float16 `[num_words, num_labels]`; `gold` and `predicted` are label ids into
    `labels`; `sentence_lengths` splits the rows into the dev sentences, in corpus order.
    """

    logits: np.ndarray
    gold: np.ndarray
    predicted: np.ndarray
    sentence_lengths: np.ndarray
    labels: list[str]

    def __post_init__(self) -> None:
        words = int(np.sum(self.sentence_lengths))
        shapes = {"logits": len(self.logits), "gold": len(self.gold), "predicted": len(self.predicted)}
        if any(size != words for size in shapes.values()) or self.logits.shape[1] != len(self.labels):
            raise ValueError(
                f"dev outputs disagree: {shapes} rows for {words} words, logits of width {self.logits.shape[1]} "
                f"for {len(self.labels)} labels"
            )

    def sentences(self, values: np.ndarray) -> list[np.ndarray]:
        """`values` (one row per word) cut into sentences."""
        return np.split(values, np.cumsum(self.sentence_lengths)[:-1])

    def tags(self, ids: np.ndarray) -> list[list[str]]:
        """Label ids (one per word) as tag sentences."""
        return [[self.labels[index] for index in sentence] for sentence in self.sentences(ids)]


def write_dev_outputs(path: str | os.PathLike, outputs: DevOutputs) -> Path:
    """Save compressed (float16 logits, int16 ids) through a temporary file and `os.replace`."""
    with atomic_open(path, "wb") as stream:
        np.savez_compressed(
            stream,
            logits=outputs.logits.astype(np.float16),
            gold=outputs.gold.astype(np.int16),
            predicted=outputs.predicted.astype(np.int16),
            sentence_lengths=outputs.sentence_lengths.astype(np.int32),
            labels=np.array(outputs.labels),
        )
    return Path(path)


def require_dev_outputs(results_dir: str | os.PathLike, run_id: str, needed_for: str) -> DevOutputs:
    """The run's stored `DevOutputs`; `MissingDevOutputsError` naming the file when it has none."""
    path = dev_outputs_path(results_dir, run_id)
    if not path.is_file():
        raise MissingDevOutputsError(
            f"{path}: run {run_id} has no stored dev logits, needed for {needed_for}; rerun it "
            "(the study keeps them beside every record it writes)"
        )
    return load_dev_outputs(path)


def load_dev_outputs(path: str | os.PathLike) -> DevOutputs:
    with np.load(path) as stored:
        return DevOutputs(
            logits=stored["logits"],
            gold=stored["gold"].astype(np.int64),
            predicted=stored["predicted"].astype(np.int64),
            sentence_lengths=stored["sentence_lengths"].astype(np.int64),
            labels=[str(label) for label in stored["labels"]],
        )


def tag_ids(sentences: Sequence[Sequence[str]], labels: Sequence[str]) -> np.ndarray:
    """Tags of all sentences as one flat array of label ids."""
    index = {label: position for position, label in enumerate(labels)}
    return np.array([index[tag] for sentence in sentences for tag in sentence], dtype=np.int64)


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
    *,
    learning_curve: Sequence[Mapping[str, float]] | None = None,
    loss_shares: Sequence[Mapping[str, float]] | None = None,
    optimizer_steps: int | None = None,
    dev_outputs: str | None = None,
) -> dict[str, Any]:
    """The JSON record of a finished run: its settings, dev metrics, timings and environment.

    `learning_curve` holds the dev scores after each epoch and `loss_shares` the loss's shares by
    gold class at each training log (`curves.LearningCurveCallback`),
    `optimizer_steps` the steps really taken, `dev_outputs` the file name of its `DevOutputs`.
    """
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
        "sampling": spec.sampling,
        "seed": spec.seed,
        "data": spec.data,
        "model": spec.model,
        "training": {**training, **spec.training, "max_seq_length": arguments.data.max_seq_length},
        "loss_arguments": dataclasses.asdict(arguments.loss),
        "metrics": dev_metrics(results["eval"]),
        "train_runtime_s": results.get("train", {}).get("train_runtime"),
        "eval_runtime_s": results["eval"].get("eval_runtime"),
        "train_statistics": train_statistics,
        "learning_curve": list(learning_curve) if learning_curve is not None else None,
        "loss_shares": list(loss_shares) if loss_shares is not None else None,
        "optimizer_steps": optimizer_steps,
        "dev_outputs": dev_outputs,
        "git_commit": git_commit(),
        "versions": library_versions(),
        "machine": machine_info(_device_type(arguments.training)),
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _device_type(training_args: Any) -> str:
    device = getattr(training_args, "device", None)
    return getattr(device, "type", None) or "cpu"
