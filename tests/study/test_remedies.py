"""The report's "which remedy when": remedies against uncalibrated CE, worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest
from study_records import study_record

from ner_imbalance.evaluation import evaluate_tags
from ner_imbalance.evaluation.bootstrap import sentence_counts
from ner_imbalance.study.crossfit import RunCalibration
from ner_imbalance.study.dev_runs import DevRuns
from ner_imbalance.study.grid import expand_study
from ner_imbalance.study.remedies import (
    ABOVE,
    BELOW,
    NO_DIFFERENCE,
    SEED_NOISE,
    Remedy,
    compare_with_ce,
    rare_types,
    remedies_markdown,
)
from ner_imbalance.study.summary import Stat, aggregate

CONFIG = {
    "name": "conv",
    "section": "convergence",
    "calibration": ["outside"],
    "training": {"num_train_epochs": 2},
    "datasets": {"toy": {"train_file": "t.conll", "validation_file": "d.conll"}},
    "seeds": [1, 2],
    "losses": [{"loss": "ce"}, {"loss": "focal", "gamma": [2]}],
}
# 10 person sentences, then 10 location sentences; location is the rare type in training.
GOLD = [["B-PER", "O"]] * 10 + [["B-LOC", "O"]] * 10
TRAINING_ENTITIES = {"PER": 100, "LOC": 10}


def predicted(locations_found: int) -> list[list[str]]:
    """Every person found, and the first `locations_found` locations (the others tagged O)."""
    return [["B-PER", "O"]] * 10 + [["B-LOC", "O"]] * locations_found + [["O", "O"]] * (10 - locations_found)


# Locations found per run and calibration mode: CE finds none (F1 2/3) and all with `outside`;
# focal finds all with seed 1 (F1 1) and half with seed 2 (F1 6/7), calibrated or not.
LOCATIONS_FOUND = {("ce", 1): (0, 10), ("ce", 2): (0, 10), ("focal", 1): (10, 10), ("focal", 2): (5, 5)}


def hand_made_study() -> tuple[list, dict, dict]:
    records, calibrated = {}, {}
    for run in expand_study(CONFIG):
        uncalibrated, calibrated_found = LOCATIONS_FOUND[run.loss, run.seed]
        tags = {"none": predicted(uncalibrated), "outside": predicted(calibrated_found)}
        scores = {mode: evaluate_tags(GOLD, mode_tags) for mode, mode_tags in tags.items()}
        counts = {mode: sentence_counts(GOLD, mode_tags) for mode, mode_tags in tags.items()}
        calibrated[run.run_id] = RunCalibration(scores, counts, fits={})
        final_f1 = scores["none"]["f1"]
        curve = [{"epoch": 1.0, "train_seconds": 5.0, "f1": 0.9 if run.loss == "focal" else 0.5}]
        curve.append({"epoch": 2.0, "train_seconds": 10.0, "f1": final_f1})
        records[run.run_id] = study_record(
            run,
            scores["none"],
            learning_curve=curve,
            train_statistics={"entities_per_type": TRAINING_ENTITIES},
        )
    return aggregate(records.values()), records, calibrated


def test_rare_types_have_fewer_training_entities_than_the_mean_per_type():
    record = {"train_statistics": {"entities_per_type": {"a": 10, "b": 100, "c": 40}}}
    assert rare_types([{"train_statistics": {}}, record]) == ["a", "c"]
    assert rare_types([{}]) == []


def test_every_setting_and_mode_against_uncalibrated_ce(tmp_path):
    summaries, records, calibrated = hand_made_study()
    compared = compare_with_ce(summaries, ["outside"], records, calibrated, DevRuns(tmp_path))
    remedies = {remedy.name: remedy for remedy in compared}
    assert list(remedies) == ["ce + `outside` calibration", "focal gamma=2", "focal gamma=2 + `outside` calibration"]

    calibrated_ce = remedies["ce + `outside` calibration"]
    assert calibrated_ce.seeds == [1, 2] and calibrated_ce.rare_types == ("LOC",)
    assert (calibrated_ce.delta_f1.mean, calibrated_ce.delta_f1.std) == (pytest.approx(1 / 3), pytest.approx(0.0))
    assert calibrated_ce.delta_rare_recall.mean == pytest.approx(1.0)
    assert calibrated_ce.epochs_to_ce is None, "time to reach CE is a property of training, not of calibration"

    focal = remedies["focal gamma=2"]
    deltas = [1 - 2 / 3, 6 / 7 - 2 / 3]
    assert focal.f1.mean == pytest.approx((1 + 6 / 7) / 2)
    assert focal.delta_f1.mean == pytest.approx(np.mean(deltas))
    assert focal.delta_f1.std == pytest.approx(np.std(deltas, ddof=1))
    # Macro F1 of CE: person 1, location 0; focal seed 2: location P 1, R 0.5, F1 2/3.
    assert focal.delta_macro_f1.mean == pytest.approx(((1 - 0.5) + ((1 + 2 / 3) / 2 - 0.5)) / 2)
    assert (focal.rare_recall.mean, focal.delta_rare_recall.mean) == (pytest.approx(0.75), pytest.approx(0.75))
    assert focal.delta_rare_recall.std == pytest.approx(np.std([1.0, 0.5], ddof=1))
    assert (focal.epochs_to_ce.mean, focal.seeds_reaching_ce) == (1.0, 2)
    assert focal.interval[0] > 0 and focal.verdict == ABOVE


def remedy(low: float, high: float, seeds: list[int], seed_std: float = 0.01) -> Remedy:
    delta = Stat((low + high) / 2, seed_std if len(seeds) > 1 else None, len(seeds))
    return Remedy("toy", "focal gamma=2", "none", seeds, (), delta, delta, (low, high), delta, None, None, None, 0)


def test_the_verdict_follows_the_interval_alone():
    assert remedy(0.01, 0.03, [1, 2, 3]).verdict == ABOVE
    assert remedy(-0.03, -0.01, [1, 2, 3]).verdict == BELOW
    assert remedy(-0.01, 0.03, [1, 2, 3]).verdict == NO_DIFFERENCE
    assert remedy(0.01, 0.03, [1, 2, 3], seed_std=0.02).verdict == SEED_NOISE, "mean 0.02 is not above std 0.02"
    assert remedy(0.01, 0.03, [1], seed_std=0.02).verdict == ABOVE, "one seed: no std to compare with"


def test_statements_give_the_interval_and_flag_too_few_seeds(tmp_path):
    summaries, records, calibrated = hand_made_study()
    lines = remedies_markdown({"toy": compare_with_ce(summaries, ["outside"], records, calibrated, DevRuns(tmp_path))})
    text = "\n".join(lines)
    assert lines[0] == "## Which remedy when (convergence)" and "### toy" in lines
    assert "- Rests on as few as 2 of the protocol's 3 seeds: a lead, not a result." in text
    above = "- Above CE beyond the paired interval and the seed std: ce + `outside` calibration: +33.3 ± 0.0 points"
    assert above in text
    assert "- Rare-type recall (LOC), largest gains over CE" in text
    assert "ce + `outside` calibration +100.0 ± 0.0; focal gamma=2 +75.0 ± 35.4" in text
    assert "- Reach CE's final micro F1 (same seed) during training: focal gamma=2 after 1.0 epochs (2 of 2" in text
    assert "| ce + `outside` calibration | 1, 2 | 100.0 ± 0.0 | +33.3 ± 0.0 |" in text
    assert remedies_markdown({}) == []


def test_a_single_seed_remedy_has_no_std_and_no_difference_without_an_interval_off_zero():
    lines = remedies_markdown({"toy": [remedy(-0.01, 0.03, [1])]})
    assert "- Rests on as few as 1 of the protocol's 3 seeds (with one seed there is no std" in "\n".join(lines)
    no_difference = "- No difference from CE shown (the interval contains 0) for 1 of the 1 remedies"
    assert f"{no_difference} (verdicts in the table)." in lines
    assert not any(line.startswith(("- Above", "- Below")) for line in lines)
