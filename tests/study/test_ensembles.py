"""The report's seed ensembles: log-probabilities averaged over seeds, then Viterbi, against the mean of the seeds."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from study_records import entity_scores, random_dev_outputs, study_record

import ner_imbalance.study.report as report
from ner_imbalance.study.ensembles import ENSEMBLES_KEY, ensemble_tagging, mean_log_probabilities
from ner_imbalance.study.grid import expand_study
from ner_imbalance.study.records import DevOutputs, dev_outputs_path, write_dev_outputs, write_record
from ner_imbalance.study.report import write_report

LABELS = ["B-PER", "I-PER", "O"]
CONFIG = {
    "name": "toy",
    "title": "Toy",
    "training": {"num_train_epochs": 1},
    "datasets": {"toy": {"train_file": "t.conll", "validation_file": "d.conll"}},
    "seeds": [1, 2, 3],
    "losses": [{"loss": "ce"}, {"loss": "focal", "gamma": [2]}],
}
# One word per sentence, gold B-PER in both. Sentence 1: seeds 1 and 2 say O (0.9), seed 3 says B-PER (0.7),
# while giving O only 0.0001. The geometric means of the probabilities, per label (B-PER, I-PER, O):
# (0.05 * 0.05 * 0.7) ** (1/3) = 0.120, (0.05 * 0.05 * 0.2999) ** (1/3) = 0.091, (0.9 * 0.9 * 0.0001) ** (1/3)
# = 0.043: the ensemble says B-PER, though two seeds of three, and the mean of their probabilities (O 0.60),
# say O. Sentence 2: every seed says B-PER.
SENTENCE_ONE = [[0.05, 0.05, 0.9], [0.05, 0.05, 0.9], [0.7, 0.2999, 0.0001]]
SENTENCE_TWO = [0.9, 0.05, 0.05]


def outputs_of(logits: np.ndarray, gold: np.ndarray, lengths: np.ndarray) -> DevOutputs:
    logits = np.asarray(logits, dtype=np.float16)
    return DevOutputs(logits, gold, logits.astype(np.float32).argmax(axis=1), lengths, LABELS)


def hand_checked_seeds() -> list[DevOutputs]:
    gold, lengths = np.array([0, 0]), np.array([1, 1])
    return [outputs_of(np.log([sentence_one, SENTENCE_TWO]), gold, lengths) for sentence_one in SENTENCE_ONE]


def write_study(tmp_path: Path, outputs_of_seed: dict[int, DevOutputs]) -> tuple[Path, Path]:
    """The toy config with records of every run; stored logits for every CE run and for focal's seeds 1-2."""
    results_dir = tmp_path / "runs"
    for run in expand_study(CONFIG):
        per_type = {"PER": entity_scores(0.5, 0.5, 0.5, 2)}
        metrics = {"precision": 0.5, "recall": 0.5, "f1": 0.5, "macro_f1": 0.5, "per_type": per_type}
        write_record(results_dir, study_record(run, metrics))
        if run.loss == "ce" or run.seed < 3:
            write_dev_outputs(dev_outputs_path(results_dir, run.run_id), outputs_of_seed[run.seed])
    config = tmp_path / "toy.yaml"
    config.write_text(yaml.safe_dump(CONFIG), encoding="utf-8")
    return config, results_dir


def report_of(tmp_path: Path, outputs_of_seed: dict[int, DevOutputs]) -> tuple[str, dict]:
    config, results_dir = write_study(tmp_path, outputs_of_seed)
    output = tmp_path / "docs" / "results.md"
    write_report([config], results_dir, output, tmp_path / "img")
    return output.read_text(encoding="utf-8"), json.loads(output.with_suffix(".json").read_text())


def test_mean_log_probabilities_is_the_mean_of_each_runs_log_softmax():
    # Run 1: p = (1/2, 1/2); run 2: p = (3/4, 1/4). Mean log p = (log(3/8) / 2, log(1/8) / 2).
    mean = mean_log_probabilities([np.array([[0.0, 0.0]]), np.array([[math.log(3.0), 0.0]])])
    assert mean == pytest.approx(np.array([[math.log(3 / 8) / 2, math.log(1 / 8) / 2]]))
    # A word's ensemble probability, softmax of the mean: the renormalised geometric mean sqrt(3/8), sqrt(1/8).
    probabilities = np.exp(mean) / np.exp(mean).sum()
    assert probabilities == pytest.approx(np.array([[math.sqrt(3), 1.0]]) / (math.sqrt(3) + 1))


def test_the_ensemble_tags_by_the_geometric_mean_of_the_seeds_probabilities():
    seeds = hand_checked_seeds()
    assert [seed.predicted[0] for seed in seeds] == [2, 2, 0], "sentence 1: O, O, B-PER"
    tagging = ensemble_tagging(seeds)
    assert tagging.scores["f1"] == 1.0 and tagging.scores["per_type"]["PER"]["correct"] == 2
    expected = np.log(np.float16(SENTENCE_ONE).astype(np.float64))  # the stored float16 logits are log p
    assert mean_log_probabilities([seed.logits for seed in seeds])[0] == pytest.approx(expected.mean(axis=0), abs=1e-3)


def test_the_hand_checked_cell_against_the_mean_of_its_seeds(tmp_path):
    markdown, aggregates = report_of(tmp_path, dict(zip([1, 2, 3], hand_checked_seeds())))
    (cell,) = aggregates[ENSEMBLES_KEY]
    assert cell["label"] == "ce" and cell["seeds"] == [1, 2, 3], "focal has logits for 2 seeds only: no row"
    # Seeds 1-2 find only sentence 2's entity (F1 2/3), seed 3 both (F1 1); the ensemble both.
    assert cell["f1"]["seeds"] == pytest.approx([2 / 3, 2 / 3, 1.0])
    assert cell["f1"]["ensemble"] == 1.0 and cell["f1"]["delta"] == pytest.approx(2 / 9)
    # A resample with k draws of sentence 1 (of 2): seeds 1-2 score 2(2 - k) / (4 - k), so Δ = 2/3 (1 - that):
    # 0 at k = 0 (a quarter of the resamples), 2/3 at k = 2 (a quarter): the 2.5 and 97.5 percentiles.
    assert cell["f1"]["interval"] == pytest.approx([0.0, 2 / 3])
    assert cell["macro_f1"]["interval"] == pytest.approx([0.0, 2 / 3]), "one type: macro F1 is micro F1"
    assert "| toy | 1 | ce | 3 | 77.8 | 100.0 | +22.2 | [+0.0, +66.7] 0∈ |" in markdown


def test_three_copies_of_one_run_are_that_run(tmp_path):
    run = random_dev_outputs(5, ["B-PER", "I-PER", "B-LOC", "I-LOC", "O"])
    markdown, aggregates = report_of(tmp_path, {1: run, 2: run, 3: run})
    (cell,) = aggregates[ENSEMBLES_KEY]
    for metric in ("f1", "macro_f1"):
        assert cell[metric]["ensemble"] == cell[metric]["seeds"][0] == cell[metric]["mean_of_seeds"]
        assert cell[metric]["delta"] == 0.0 and cell[metric]["interval"] == [0.0, 0.0]
    assert "| toy | 1 | ce | 3 |" in markdown.split("## Seed ensembles")[1]


def test_the_section_is_appended_to_the_unchanged_report(tmp_path, monkeypatch):
    base = random_dev_outputs(1, LABELS)
    noise = {seed: np.random.default_rng(seed).normal(size=base.logits.shape) for seed in (1, 2, 3)}
    seeds = {seed: outputs_of(base.logits + noise[seed], base.gold, base.sentence_lengths) for seed in noise}
    config, results_dir = write_study(tmp_path, seeds)

    def report_to(folder: str) -> tuple[str, dict]:
        output = tmp_path / folder / "results.md"
        write_report([config], results_dir, output, tmp_path / folder / "img")
        return output.read_text(encoding="utf-8"), json.loads(output.with_suffix(".json").read_text())

    markdown, aggregates = report_to("with")
    monkeypatch.setattr(report, "cell_ensembles", lambda *arguments: [])
    without, without_aggregates = report_to("without")
    assert "Seed ensembles" not in without and ENSEMBLES_KEY not in without_aggregates
    assert markdown.startswith(without)
    assert markdown[len(without) :].startswith("\n## Seed ensembles\n\n") and markdown.endswith(" |\n")
    assert {key: value for key, value in aggregates.items() if key != ENSEMBLES_KEY} == without_aggregates
    assert len(aggregates[ENSEMBLES_KEY]) == 1


def test_runs_of_other_dev_words_are_refused():
    first, second = hand_checked_seeds()[:2]
    other = outputs_of(second.logits, np.array([0, 2]), second.sentence_lengths)
    with pytest.raises(ValueError, match="run 2 of the ensemble scored other dev words or labels than run 1"):
        ensemble_tagging([first, other])
