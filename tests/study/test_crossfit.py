"""Cross-fitted calibration from stored dev logits: fixed halves, no leak from the scored half, pooled scores."""

from __future__ import annotations

import json
import runpy
import sys

import numpy as np
import pytest
import yaml
from study_records import entity_scores, study_record
from tiny_models import REPO

from ner_imbalance.calibration.search import search_bias, tags_from_logits
from ner_imbalance.evaluation import evaluate_tags
from ner_imbalance.study.crossfit import crossfit, dev_halves
from ner_imbalance.study.grid import StudyConfigError, expand_study, load_study_config
from ner_imbalance.study.records import (
    DevOutputs,
    MissingDevOutputsError,
    dev_outputs_path,
    write_dev_outputs,
    write_record,
)
from ner_imbalance.study.report import write_report

SCRIPTS = REPO / "scripts"
LABELS = ["B-PER", "I-PER", "B-LOC", "O"]
OUTSIDE = LABELS.index("O")


def test_halves_are_fixed_disjoint_and_cover_dev():
    first, second = dev_halves(11)
    assert len(first) == 5 and len(second) == 6
    assert not set(first) & set(second) and sorted({*first, *second}) == list(range(11))
    again = dev_halves(11)
    assert np.array_equal(first, again[0]) and np.array_equal(second, again[1])
    assert not np.array_equal(first, np.arange(5)), "a permutation, not the first and last sentences"
    assert not np.array_equal(dev_halves(11, seed=1)[0], first)
    with pytest.raises(ValueError, match="at least 2"):
        dev_halves(1)


def person_sentences(num_sentences: int, margin_of: dict[int, float]) -> DevOutputs:
    """Sentences `B-PER O O`: the `B-PER` word's logit is `margin_of[sentence]` below (negative: above) `O`.

    Every other word is `O`, and every other label is below, by a margin of 10 or more, beyond any bias tried.
    """
    logits = np.full((3 * num_sentences, len(LABELS)), -10.0, dtype=np.float32)
    logits[:, OUTSIDE] = 10.0
    gold = np.tile([0, OUTSIDE, OUTSIDE], num_sentences)
    for sentence in range(num_sentences):
        logits[3 * sentence, OUTSIDE] = 0.0
        logits[3 * sentence, 0] = -margin_of[sentence]
    predicted = logits.argmax(axis=1)
    return DevOutputs(logits.astype(np.float16), gold, predicted, np.full(num_sentences, 3), LABELS)


def test_the_bias_chosen_on_one_half_never_sees_the_other():
    """Half A is already right; half B's entities sit 1 below O. In-sample calibration fixes B, cross-fitting cannot."""
    num_sentences = 10
    half_a, half_b = dev_halves(num_sentences)
    outputs = person_sentences(num_sentences, {**{s: -3.0 for s in half_a}, **{s: 1.0 for s in half_b}})
    gold = outputs.tags(outputs.gold)

    in_sample = search_bias(outputs.logits, gold, LABELS, mode="outside")
    assert in_sample.score_before < 1.0 and in_sample.score_after == 1.0, "calibrating on all of dev gains"

    fit = crossfit(outputs, "outside")
    assert not fit.biases[0].any(), "half A gives no reason to move the O logit"
    assert fit.biases[1][OUTSIDE] <= -1.0, "half B would move it, but it only predicts half A"
    uncalibrated = evaluate_tags(gold, outputs.tags(outputs.predicted))
    assert fit.scores["f1"] == uncalibrated["f1"] < 1.0
    assert fit.scores["per_type"]["PER"]["recall"] == pytest.approx(len(half_a) / num_sentences)

    noisy = np.array(outputs.logits, dtype=np.float32)
    words_b = np.concatenate([np.arange(3 * s, 3 * s + 3) for s in half_b])
    noisy[words_b] = np.random.default_rng(0).normal(scale=3.0, size=(len(words_b), len(LABELS)))
    changed = DevOutputs(noisy.astype(np.float16), outputs.gold, outputs.predicted, outputs.sentence_lengths, LABELS)
    for mode in ("outside", "per_type"):
        assert np.array_equal(crossfit(changed, mode).biases[0], crossfit(outputs, mode).biases[0]), mode


@pytest.mark.parametrize("mode", ["outside", "per_type"])
def test_pooled_score_is_evaluate_tags_of_the_pooled_tags(mode):
    rng = np.random.default_rng(3)
    lengths = rng.integers(2, 9, size=40)
    gold = rng.choice(len(LABELS), size=lengths.sum(), p=[0.15, 0.05, 0.1, 0.7])
    logits = rng.normal(size=(lengths.sum(), len(LABELS))).astype(np.float32)
    logits[np.arange(len(gold)), gold] += 1.0
    logits[:, OUTSIDE] += 1.5
    outputs = DevOutputs(logits.astype(np.float16), gold, logits.argmax(axis=1), lengths, LABELS)
    fit = crossfit(outputs, mode)
    assert any(bias.any() for bias in fit.biases), "the case must move a bias"

    sentences = outputs.sentences(np.asarray(outputs.logits, dtype=np.float32))
    by_hand = [None] * len(lengths)
    for bias, scored in zip(fit.biases[::-1], fit.halves):
        tags = tags_from_logits(np.concatenate([sentences[s] for s in scored]), lengths[scored], LABELS, bias)
        for sentence, sentence_tags in zip(scored, tags):
            by_hand[sentence] = sentence_tags
    assert outputs.tags(fit.predicted) == by_hand
    assert fit.scores == evaluate_tags(outputs.tags(outputs.gold), by_hand)


def test_calibration_modes_are_checked_in_the_config(tmp_path):
    path = tmp_path / "bad.yaml"
    base = {"name": "c", "datasets": {"d": {"train_file": "t", "validation_file": "v"}}, "seeds": [1]}
    path.write_text(yaml.safe_dump({**base, "losses": [{"loss": "ce"}], "calibration": ["outside", "bias"]}))
    with pytest.raises(StudyConfigError, match="`calibration` must be a list of outside, per_type"):
        load_study_config(path)


CONVERGENCE = {
    "name": "conv",
    "title": "Convergence",
    "section": "convergence",
    "calibration": ["outside", "per_type"],
    "training": {"num_train_epochs": 2},
    "datasets": {"toy": {"train_file": "t.conll", "validation_file": "d.conll"}},
    "seeds": [1, 2],
    "losses": [{"loss": "ce"}, {"loss": "focal", "gamma": [2]}],
}


def toy_record(run, f1: float) -> dict:
    per_type = {"PER": entity_scores(f1, f1, f1, 10)}
    metrics = {"precision": f1, "recall": f1, "f1": f1, "macro_f1": f1, "per_type": per_type}
    curve = [{"epoch": 1.0, "train_seconds": 5.0, "f1": f1}, {"epoch": 2.0, "train_seconds": 9.0, "f1": f1}]
    return study_record(run, metrics, learning_curve=curve)


def write_convergence_study(tmp_path, with_logits: bool = True):
    config_path = tmp_path / "conv.yaml"
    config_path.write_text(yaml.safe_dump(CONVERGENCE), encoding="utf-8")
    results_dir = tmp_path / "runs"
    for run in expand_study(CONVERGENCE):
        # Every entity is 1 below O (calibration fixes all of them, from either half), the focal runs' by less.
        margin = 0.5 if run.loss == "focal" else 1.0
        outputs = person_sentences(10, {s: margin for s in range(10)})
        if with_logits:
            write_dev_outputs(dev_outputs_path(results_dir, run.run_id), outputs)
        write_record(results_dir, toy_record(run, 0.0))
    return config_path, results_dir


def test_report_gives_uncalibrated_and_cross_fitted_scores_with_the_paired_interval(tmp_path):
    config_path, results_dir = write_convergence_study(tmp_path)
    output = tmp_path / "out" / "results.md"
    write_report([config_path], results_dir, output, tmp_path / "out" / "img")
    markdown = output.read_text(encoding="utf-8")
    assert (
        "| loss setting | calibration | n | micro F1 | macro F1 | R PER (10) | Δ micro F1 to uncalibrated |" in markdown
    )
    assert "| ce | none | 2 | 0.0 ± 0.0 | 0.0 ± 0.0 | 0.0 ± 0.0 | — | — |" in markdown
    assert (
        "| ce | `outside`, cross-fitted | 2 | 100.0 ± 0.0 | 100.0 ± 0.0 | 100.0 ± 0.0 | +100.0 ± 0.0 "
        "| [+100.0, +100.0] |" in markdown
    )
    assert "| focal gamma=2 | `per_type`, cross-fitted | 2 |" in markdown
    assert "The convergence runs also evaluate dev after every epoch" in markdown
    assert "with no evaluation during training, and is scored once" not in markdown

    calibration = json.loads(output.with_suffix(".json").read_text())["sections"][0]["calibration"]
    assert calibration["modes"] == ["outside", "per_type"] and len(calibration["runs"]) == 4
    run = next(iter(calibration["runs"].values()))
    assert run["none"]["scores"]["f1"] == 0.0 and run["outside"]["scores"]["f1"] == 1.0
    assert all(bias[OUTSIDE] < 0 for bias in run["outside"]["biases"])


def test_a_convergence_run_without_dev_logits_is_an_error(tmp_path, monkeypatch, capsys):
    config_path, results_dir = write_convergence_study(tmp_path, with_logits=False)
    with pytest.raises(MissingDevOutputsError, match=r"\.logits\.npz: run toy__keep1__ce__.*has no stored dev logits"):
        write_report([config_path], results_dir, tmp_path / "results.md", tmp_path / "img")
    argv = ["report_results.py", "--configs", str(config_path), "--results-dir", str(results_dir)]
    monkeypatch.setattr(sys, "argv", [*argv, "--output", str(tmp_path / "out.md"), "--img-dir", str(tmp_path / "img")])
    with pytest.raises(SystemExit) as exited:
        runpy.run_path(str(SCRIPTS / "report_results.py"), run_name="__main__")
    message = capsys.readouterr().err
    assert exited.value.code == 2 and message.count("\n") == 1
    assert message.startswith("report_results.py: error: ") and ".logits.npz" in message


def test_report_of_a_calibrated_config_with_zero_records(tmp_path):
    config_path = tmp_path / "conv.yaml"
    config_path.write_text(yaml.safe_dump(CONVERGENCE), encoding="utf-8")
    output = tmp_path / "results.md"
    write_report([config_path], tmp_path / "runs", output, tmp_path / "img")
    assert "0 of 4 runs finished" in output.read_text(encoding="utf-8")


def test_imbalance_section_gives_each_setting_with_and_without_outside_calibration(tmp_path):
    config = {**CONVERGENCE, "name": "imb", "section": "imbalance", "calibration": ["outside"]}
    config["entity_keep_ratios"], config["seeds"] = [1.0, 0.3], [1]
    config_path = tmp_path / "imb.yaml"
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    for run in expand_study(config):
        write_dev_outputs(
            dev_outputs_path(tmp_path / "runs", run.run_id), person_sentences(10, dict.fromkeys(range(10), 1.0))
        )
        write_record(tmp_path / "runs", toy_record(run, 0.0))
    write_report([config_path], tmp_path / "runs", tmp_path / "results.md", tmp_path / "img")
    markdown = (tmp_path / "results.md").read_text(encoding="utf-8")
    for keep in ("100%", "30%"):
        cell = markdown.split(f"#### keep {keep}")[1].split("####")[0]
        assert "| ce | none | 1 | 0.0 ± — |" in cell and "| ce | `outside`, cross-fitted | 1 | 100.0 ± — |" in cell
        assert "per_type" not in cell
