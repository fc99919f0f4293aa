"""Each setting against the same recipe with one change undone (a config's `paired_with`)."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from study_records import random_dev_outputs

from ner_imbalance.constants import VITERBI
from ner_imbalance.study.convergence import format_points
from ner_imbalance.study.counterparts import (
    counterpart_runs,
    counterpart_settings,
    counterpart_table,
    rare_recall,
    run_settings,
)
from ner_imbalance.study.decoding import decode_run
from ner_imbalance.study.grid import StudyConfigError, load_study_config
from ner_imbalance.study.summary import aggregate, mean_std

LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
TRAINING = {"num_train_epochs": 5, "per_device_train_batch_size": 16, "learning_rate": 5e-5}


def record(
    run_id: str, setting_id: str, seed: int, *, learning_rate: float = 5e-5, loss: str = "ce", **sampling
) -> dict:
    """A run record with what the pairing reads (its settings) and what the summaries read (its metrics)."""
    return {
        "run_id": run_id,
        "setting_id": setting_id,
        "seed": seed,
        "dataset": "toy",
        "data": {"train_file": "t.conll", "validation_file": "d.conll"},
        "model": {},
        "entity_keep_ratio": 1.0,
        "loss": loss,
        "hyperparameters": {},
        "class_weights": "none",
        "training": {**TRAINING, "learning_rate": learning_rate},
        "sampling": sampling,
        "train_statistics": {"entities_per_type": {"PER": 100, "LOC": 10}},
        "metrics": {"precision": 0.5, "recall": 0.5, "f1": 0.5, "macro_f1": 0.5, "per_type": {}},
    }


def records_of(*runs: dict) -> dict[str, dict]:
    return {run["run_id"]: run for run in runs}


def test_a_learning_rate_counterpart_differs_only_in_the_learning_rate():
    fast = record("fast1", "fast", 1, learning_rate=1e-4)
    assert counterpart_settings(fast, {"learning_rate": 5.0e-5}) == run_settings(record("base1", "base", 1))
    assert counterpart_settings(fast, {"learning_rate": 2.0e-4}) != run_settings(record("base1", "base", 1))


def test_undoing_augmentation_drops_the_threshold_only_augmentation_used():
    augmented = record("mr1", "mr", 1, augment="mention_replacement", augment_rate=0.1, repeat_threshold=0.3)
    assert counterpart_settings(augmented, {"augment": "none"})["sampling"] == {}
    sampled = record(
        "rf_mr1", "rf_mr", 1, sentence_sampling="repeat_factor", repeat_threshold=0.3, augment="m", augment_rate=0.1
    )
    assert counterpart_settings(sampled, {"augment": "none"})["sampling"] == {
        "sentence_sampling": "repeat_factor",
        "repeat_threshold": 0.3,
    }


def test_counterparts_are_paired_by_seed_and_by_every_other_setting():
    records = records_of(
        record("fast1", "fast", 1, learning_rate=1e-4),
        record("fast2", "fast", 2, learning_rate=1e-4),
        record("fast3", "fast", 3, learning_rate=1e-4),
        record("base1", "base", 1),
        record("base2", "base", 2),
        record("focal1", "focal", 1, loss="focal"),  # another recipe at 5e-5: not a counterpart
        record("slow1", "slow", 1, learning_rate=2e-5),
    )
    assert counterpart_runs(records, "fast", {"learning_rate": 5e-5}) == {1: ("fast1", "base1"), 2: ("fast2", "base2")}
    assert counterpart_runs(records, "base", {"learning_rate": 5e-5}) == {}, "a run is not its own counterpart"


def test_the_table_gives_each_difference_of_the_paired_runs():
    records = records_of(
        record("fast1", "fast", 1, learning_rate=1e-4),
        record("fast2", "fast", 2, learning_rate=1e-4),
        record("base1", "base", 1),
        record("base2", "base", 2),
    )
    decoded = {run_id: decode_run(random_dev_outputs(seed, LABELS)) for seed, run_id in enumerate(records)}
    summaries = aggregate([records["fast1"], records["fast2"], records["base1"], records["base2"]])
    lines = counterpart_table(summaries, records, decoded, {"learning_rate": 5e-5})
    assert len(lines) == 3, "one row: the base runs have no counterpart"
    cells = [cell.strip() for cell in lines[2].strip("|").split("|")]
    assert cells[:2] == ["ce", "1, 2"]
    for offset, metric in ((2, "f1"), (6, "macro_f1")):
        expected = mean_std(
            decoded[f"fast{seed}"].scores[VITERBI][metric] - decoded[f"base{seed}"].scores[VITERBI][metric]
            for seed in (1, 2)
        )
        assert cells[offset + 2] == format_points(expected)
    location_recall = mean_std(
        decoded[f"fast{seed}"].scores[VITERBI]["per_type"]["LOC"]["recall"]
        - decoded[f"base{seed}"].scores[VITERBI]["per_type"]["LOC"]["recall"]
        for seed in (1, 2)
    )
    assert cells[12] == format_points(location_recall), "LOC is the one type below the mean training count"
    assert counterpart_table(summaries, records, {}, {"learning_rate": 5e-5}) == [], "no logits, no table"


def test_rare_recall_is_the_unweighted_mean_of_each_types_recall():
    counts = [[[1, 4, 2], [0, 0, 0], [3, 3, 4]]]  # correct, predicted, gold: 1/2, no gold (0), 3/4
    assert rare_recall(np.asarray(counts)).tolist() == [pytest.approx((0.5 + 0 + 0.75) / 3)]


@pytest.mark.parametrize(
    "paired_with, message",
    [
        ("5e-5", "`paired_with` must map"),
        ({"momentum": 0.9}, "`paired_with` must map"),
        ({"learning_rate": -1}, "must be a positive number"),
        ({"augment": "mention_replacement"}, "can only be none"),
    ],
)
def test_a_bad_paired_with_is_one_line_naming_the_config(tmp_path, paired_with, message):
    path = tmp_path / "bad.yaml"
    path.write_text(
        yaml.safe_dump(
            {"name": "x", "datasets": {"toy": {}}, "seeds": [1], "losses": [{"loss": "ce"}], "paired_with": paired_with}
        )
    )
    with pytest.raises(StudyConfigError, match=message) as raised:
        load_study_config(path)
    assert str(path) in str(raised.value) and "\n" not in str(raised.value)
