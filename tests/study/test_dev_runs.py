"""The report's fast path (each run derived once, in worker processes, each distinct tagging scored once on
label ids; shared bootstrap draws) against the plain computation (seqeval on tag strings): the same numbers, exactly."""

from __future__ import annotations

import numpy as np
import pytest
from study_records import entity_scores, random_dev_outputs, study_record

from ner_imbalance.calibration.search import tags_from_logits
from ner_imbalance.evaluation import evaluate_tags
from ner_imbalance.evaluation.bootstrap import (
    macro_f1,
    micro_f1,
    paired_bootstrap,
    sentence_counts,
    sentence_type_counts,
)
from ner_imbalance.study.crossfit import calibrate_run, crossfit
from ner_imbalance.study.decoding import VITERBI_OUTSIDE
from ner_imbalance.study.dev_runs import DevRuns, calibration_modes, section_run_ids
from ner_imbalance.study.grid import expand_study
from ner_imbalance.study.records import (
    DevOutputs,
    MissingDevOutputsError,
    dev_outputs_path,
    load_dev_outputs,
    load_records,
    write_dev_outputs,
    write_record,
)
from ner_imbalance.study.summary import Section, aggregate

LABELS = ["B-PER", "I-PER", "B-LOC", "I-LOC", "O"]
CONFIG = {
    "name": "toy",
    "training": {"num_train_epochs": 1},
    "datasets": {"toy": {"train_file": "t.conll", "validation_file": "d.conll"}},
    "seeds": [1, 2],
    "losses": [{"loss": "ce"}, {"loss": "focal", "gamma": [2]}],
}


def write_runs(results_dir) -> dict[str, dict]:
    for number, run in enumerate(expand_study(CONFIG)):
        metrics = {"precision": 0.5, "recall": 0.5, "f1": 0.5, "macro_f1": 0.5}
        write_record(results_dir, study_record(run, {**metrics, "per_type": {"PER": entity_scores(0.5, 0.5, 0.5, 9)}}))
        write_dev_outputs(dev_outputs_path(results_dir, run.run_id), random_dev_outputs(number, LABELS))
    return load_records(results_dir)


def toy_sections(records: dict[str, dict]) -> list[Section]:
    summaries = aggregate(records.values())
    return [
        Section("a.yaml", "a", "A", "convergence", summaries, calibration=["per_type"]),
        Section("b.yaml", "b", "B", "imbalance", summaries[:1], calibration=["outside"]),
    ]


def reference_calibration(outputs: DevOutputs, modes: list[str]) -> tuple[dict, dict, dict]:
    """Scores, per-sentence counts and pooled tags of each mode, scored plainly on tag strings."""
    gold = outputs.tags(outputs.gold)
    tags = {"none": outputs.tags(outputs.predicted)}
    fits = {mode: crossfit(outputs, mode) for mode in modes}
    tags.update({mode: outputs.tags(fit.predicted) for mode, fit in fits.items()})
    scores = {mode: evaluate_tags(gold, predicted) for mode, predicted in tags.items()}
    return scores, {mode: sentence_counts(gold, predicted) for mode, predicted in tags.items()}, fits


def reference_decodings(outputs: DevOutputs) -> tuple[dict, dict]:
    """Scores and per-sentence, per-type counts under each decoding, scored plainly on tag strings."""
    gold = outputs.tags(outputs.gold)
    logits, lengths, labels = outputs.logits, outputs.sentence_lengths, outputs.labels
    tags = {method: tags_from_logits(logits, lengths, labels, decoding=method) for method in ("argmax", "viterbi")}
    tags[VITERBI_OUTSIDE] = outputs.tags(crossfit(outputs, "outside", decoding="viterbi").predicted)
    scores = {method: evaluate_tags(gold, predicted) for method, predicted in tags.items()}
    type_counts = {
        method: sentence_type_counts(gold, predicted, list(scores[method]["per_type"]))
        for method, predicted in tags.items()
    }
    return scores, type_counts


@pytest.mark.parametrize("workers", [1, 2])
def test_each_run_derived_once_equals_scoring_its_tags_plainly(tmp_path, workers):
    records = write_runs(tmp_path)
    sections = toy_sections(records)
    modes = calibration_modes(sections, records)
    ce_runs = {run_id for run_id, record in records.items() if record["loss"] == "ce"}
    assert modes == {run_id: ["outside", "per_type"] if run_id in ce_runs else ["per_type"] for run_id in records}
    run_ids = section_run_ids(sections, records)
    assert run_ids == sorted(records)
    dev_runs = DevRuns(tmp_path, workers=workers)
    dev_runs.derive(modes, run_ids)
    for run_id in run_ids:
        outputs = load_dev_outputs(dev_outputs_path(tmp_path, run_id))
        scores, counts, fits = reference_calibration(outputs, modes[run_id])
        kept = dev_runs.calibrated(modes)[run_id]
        assert kept.scores == scores
        assert kept.counts.keys() == counts.keys()
        assert all(np.array_equal(kept.counts[mode], counts[mode]) for mode in counts)
        for mode, fit in fits.items():
            assert np.array_equal(kept.fits[mode].predicted, fit.predicted)
            assert all(np.array_equal(ours, theirs) for ours, theirs in zip(kept.fits[mode].biases, fit.biases))
        decoded = dev_runs.decoded([run_id])[run_id]
        scores, type_counts = reference_decodings(outputs)
        assert decoded.scores == scores
        assert decoded.type_counts.keys() == type_counts.keys()
        assert all(np.array_equal(decoded.type_counts[name], counts) for name, counts in type_counts.items())
        # the stored predictions' counts come from the kept calibration, not a second read
        assert np.array_equal(dev_runs.counts(run_id, "a test"), calibrate_run(outputs, []).counts["none"])


def test_a_missing_logits_file_is_named_before_any_run_is_derived(tmp_path):
    records = write_runs(tmp_path)
    missing = sorted(records)[-1]
    dev_outputs_path(tmp_path, missing).unlink()
    dev_runs = DevRuns(tmp_path, workers=2)
    with pytest.raises(MissingDevOutputsError, match=f"{missing}.logits.npz.*the cross-fitted calibration"):
        dev_runs.derive(calibration_modes(toy_sections(records), records), [])


def reference_paired_bootstrap(setting, reference, score, resamples, seed=0):
    """The bootstrap written plainly: draw the sentence indices, sum each resample's counts, average the differences."""
    num_sentences = len(setting[0])
    drawn = np.random.default_rng(seed).integers(0, num_sentences, size=(resamples, num_sentences))
    differences = np.zeros(resamples)
    for ours, theirs in zip(setting, reference):
        differences += score(ours[drawn].sum(axis=1)) - score(theirs[drawn].sum(axis=1))
    tail = 100 * (1 - 0.95) / 2  # 2.5 as the library computes it (not exactly 2.5 in floats)
    low, high = np.percentile(differences / len(setting), [tail, 100 - tail])
    return float(low), float(high)


@pytest.mark.parametrize("metric", ["micro", "macro"])
def test_paired_bootstrap_with_shared_draws_equals_drawing_for_each_call(metric):
    generator = np.random.default_rng(7)
    shape = (57, 3) if metric == "micro" else (57, 4, 3)
    runs = [generator.integers(0, 4, size=shape) for _ in range(6)]
    score = micro_f1 if metric == "micro" else macro_f1
    for pairs in (1, 3):
        setting, reference = runs[:pairs], runs[3 : 3 + pairs]
        expected = reference_paired_bootstrap(setting, reference, score, resamples=300)
        for _ in range(2):  # the second call reuses the first one's draws
            assert paired_bootstrap(setting, reference, score=score, resamples=300) == expected
    assert paired_bootstrap(runs[:1], runs[1:2], score=score, resamples=300, seed=1) == reference_paired_bootstrap(
        runs[:1], runs[1:2], score, resamples=300, seed=1
    )
