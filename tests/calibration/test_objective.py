"""Calibration metrics beyond micro and macro F1: micro F1 that keeps every type's recall, and the blend."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from tiny_models import REPO

from ner_imbalance.calibration import search_bias, tags_from_logits
from ner_imbalance.calibration.objective import BLEND, KEEP_RECALL, MACRO_F1, MICRO_F1
from ner_imbalance.config.arguments import parse_arguments
from ner_imbalance.constants import DECODING_METHODS
from ner_imbalance.evaluation import evaluate_tags

LABELS = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER", "B-product", "I-product"]


def _case(seed: int, sentences: int = 60) -> tuple[np.ndarray, list[list[str]]]:
    """Random logits whose entity columns are shifted per type, so an `O` bias that helps micro F1
    can cost a type its recall; gold tags are valid IOB2 entities of 1-2 words."""
    generator = np.random.default_rng(seed)
    gold, rows = [], []
    for _ in range(sentences):
        tags = ["O"] * int(generator.integers(3, 10))
        for start in generator.choice(len(tags) - 1, size=2, replace=False):
            if tags[start] == "O" and tags[start + 1] == "O" and generator.random() < 0.5:
                entity_type = generator.choice(["LOC", "PER", "product"], p=[0.5, 0.35, 0.15])
                tags[start] = f"B-{entity_type}"
                if generator.random() < 0.4:
                    tags[start + 1] = f"I-{entity_type}"
        gold.append(tags)
        for tag in tags:
            row = generator.normal(scale=1.2, size=len(LABELS))
            row[LABELS.index(tag)] += 2.5
            rows.append(row)
    logits = np.asarray(rows, dtype=np.float32)
    logits[:, LABELS.index("B-product")] -= 0.7
    return logits, gold


def _type_recall(gold: list[list[str]], logits: np.ndarray, bias, decoding: str) -> dict[str, float]:
    tags = tags_from_logits(logits, [len(sentence) for sentence in gold], LABELS, bias, decoding=decoding)
    return {entity_type: scores["recall"] for entity_type, scores in evaluate_tags(gold, tags)["per_type"].items()}


@pytest.mark.parametrize("decoding", DECODING_METHODS)
@pytest.mark.parametrize("mode", ["outside", "per_type"])
@pytest.mark.parametrize("floor", [0.8, 1.0])
def test_every_type_keeps_its_share_of_the_uncalibrated_recall(decoding, mode, floor):
    for seed in range(6):
        logits, gold = _case(seed)
        result = search_bias(logits, gold, LABELS, mode=mode, metric=KEEP_RECALL, recall_floor=floor, decoding=decoding)
        before = _type_recall(gold, logits, None, decoding)
        after = _type_recall(gold, logits, result.bias, decoding)
        assert all(after[entity_type] >= floor * recall - 1e-12 for entity_type, recall in before.items())
        assert result.score_after == result.scores_after["f1"] >= result.score_before == result.scores_before["f1"]
        assert result.settings["recall_floor"] == floor


@pytest.mark.parametrize("decoding", DECODING_METHODS)
def test_outside_search_is_the_best_allowed_point_of_its_grid(decoding):
    """Brute force over the `O` grid: the chosen bias has the best micro F1 of the biases that keep
    every type's recall, and some case has a better micro F1 among the biases it rules out."""
    floor, ruled_out_better = 0.9, 0
    grid = np.round(np.arange(-20, 21) * 0.25, 10)
    for seed in range(6):
        logits, gold = _case(seed)
        result = search_bias(
            logits,
            gold,
            LABELS,
            mode="outside",
            metric=KEEP_RECALL,
            recall_floor=floor,
            decoding=decoding,
            outside_step=0.25,
        )
        before = _type_recall(gold, logits, None, decoding)
        allowed, other = [], []
        for value in grid:
            bias = np.zeros(len(LABELS))
            bias[0] = value
            tags = tags_from_logits(logits, [len(sentence) for sentence in gold], LABELS, bias, decoding=decoding)
            scores = evaluate_tags(gold, tags)
            keeps = all(scores["per_type"][name]["recall"] >= floor * recall - 1e-12 for name, recall in before.items())
            (allowed if keeps else other).append(scores["f1"])
        assert result.score_after == max(allowed)
        ruled_out_better += max(other, default=0.0) > max(allowed)
    assert ruled_out_better > 0


@pytest.mark.parametrize("decoding", DECODING_METHODS)
@pytest.mark.parametrize("mode", ["outside", "per_type"])
def test_floor_zero_is_micro_f1_and_blend_ends_are_micro_and_macro(decoding, mode):
    for seed in range(4):
        logits, gold = _case(seed)

        def bias(metric: str, **options: float) -> np.ndarray:
            return search_bias(logits, gold, LABELS, mode=mode, metric=metric, decoding=decoding, **options).bias

        micro, macro = bias(MICRO_F1), bias(MACRO_F1)
        assert np.array_equal(bias(KEEP_RECALL, recall_floor=0.0), micro)
        assert np.array_equal(bias(BLEND, macro_weight=0.0), micro)
        assert np.array_equal(bias(BLEND, macro_weight=1.0), macro)


def test_blend_scores_are_the_weighted_mean_of_micro_and_macro_f1():
    logits, gold = _case(0)
    result = search_bias(logits, gold, LABELS, mode="per_type", metric=BLEND, macro_weight=0.3)
    for score, scores in ((result.score_before, result.scores_before), (result.score_after, result.scores_after)):
        assert score == pytest.approx(0.7 * scores["f1"] + 0.3 * scores["macro_f1"], abs=1e-12)
    assert result.settings["macro_weight"] == 0.3


@pytest.mark.parametrize(
    "options, message", [({"recall_floor": 1.5}, "recall_floor"), ({"macro_weight": -0.1}, "macro_weight")]
)
def test_search_rejects_options_out_of_range(options, message):
    logits, gold = _case(0)
    with pytest.raises(ValueError, match=message):
        search_bias(logits, gold, LABELS, mode="outside", metric=KEEP_RECALL, **options)


@pytest.mark.parametrize(
    "argv, flag",
    [
        (["--calibration_recall_floor", "1.2"], "--calibration_recall_floor"),
        (["--calibration_recall_floor", "-0.5"], "--calibration_recall_floor"),
        (["--calibration_macro_weight", "2"], "--calibration_macro_weight"),
        (["--calibration_metric", "micro"], "--calibration_metric"),
    ],
)
def test_bad_flags_fail_before_loading_with_the_flag_named(argv, flag):
    with pytest.raises(ValueError, match=flag):
        parse_arguments(["--calibrate", "per_type", *argv])


def test_the_flags_reach_the_search():
    *_, training_args = parse_arguments(
        ["--calibrate", "per_type", "--calibration_metric", KEEP_RECALL, "--calibration_recall_floor", "0.6"]
    )
    kwargs = training_args.calibration_kwargs()
    assert (kwargs["metric"], kwargs["recall_floor"]) == (KEEP_RECALL, 0.6)


def test_script_rejects_a_bad_floor_in_one_line_with_exit_2():
    completed = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "train_ner.py"), "--calibrate", "per_type"]
        + ["--calibration_metric", KEEP_RECALL, "--calibration_recall_floor", "1.5"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 2
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and "--calibration_recall_floor" in lines[0]
