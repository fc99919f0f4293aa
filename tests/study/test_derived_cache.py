"""The disk cache of derived runs: a second report reads every run back instead of deriving it, a changed
logits file or a broken cache file is derived again, and the code fingerprint covers the derivation's code."""

from __future__ import annotations

import numpy as np
from study_records import random_dev_outputs

import ner_imbalance.study.dev_runs as dev_runs_module
from ner_imbalance.calibration.objective import Objective
from ner_imbalance.calibration.scan import BiasScan
from ner_imbalance.calibration.search import search_bias
from ner_imbalance.decoding import decode, tag_constraints, viterbi_decode
from ner_imbalance.evaluation.entity_counts import EntityCounter
from ner_imbalance.evaluation.scores import scores_from_counts
from ner_imbalance.study.crossfit import calibrate_run
from ner_imbalance.study.decoding import decode_run
from ner_imbalance.study.derived_cache import DERIVING_MODULES, DerivedCache
from ner_imbalance.study.dev_runs import DevRuns
from ner_imbalance.study.records import dev_outputs_path, load_dev_outputs, write_dev_outputs
from ner_imbalance.study.scoring import DevScorer
from ner_imbalance.tags import conlleval_split

LABELS = ["B-PER", "I-PER", "B-LOC", "I-LOC", "O"]
RUNS = ["run_a", "run_b"]
MODES = {"run_a": ["outside"], "run_b": ["outside", "per_type"]}


def write_outputs(results_dir, seed: int = 0) -> None:
    for number, run_id in enumerate(RUNS):
        write_dev_outputs(dev_outputs_path(results_dir, run_id), random_dev_outputs(seed + number, LABELS))


def derived(results_dir, cache_dir) -> DevRuns:
    dev_runs = DevRuns(results_dir, workers=1, cache=DerivedCache(cache_dir))
    dev_runs.derive(MODES, RUNS)
    return dev_runs


def test_a_second_report_reads_every_run_back(tmp_path, monkeypatch):
    write_outputs(tmp_path / "runs")
    first = derived(tmp_path / "runs", tmp_path / "cache")
    assert len(list((tmp_path / "cache").iterdir())) == len(RUNS)

    def fail(*arguments):
        raise AssertionError(f"derived again: {arguments}")

    monkeypatch.setattr(dev_runs_module, "_derive", fail)
    second = derived(tmp_path / "runs", tmp_path / "cache")
    for run_id in RUNS:
        outputs = load_dev_outputs(dev_outputs_path(tmp_path / "runs", run_id))
        assert second.calibration(run_id, MODES[run_id]).scores == calibrate_run(outputs, MODES[run_id]).scores
        assert second.decodings(run_id).scores == decode_run(outputs).scores == first.decodings(run_id).scores
        assert np.array_equal(second.counts(run_id, "a test"), first.counts(run_id, "a test"))


def test_a_changed_logits_file_or_a_broken_cache_file_is_derived_again(tmp_path):
    write_outputs(tmp_path / "runs")
    derived(tmp_path / "runs", tmp_path / "cache")
    write_outputs(tmp_path / "runs", seed=10)  # the same run ids, other logits
    again = derived(tmp_path / "runs", tmp_path / "cache")
    outputs = load_dev_outputs(dev_outputs_path(tmp_path / "runs", "run_a"))
    assert again.decodings("run_a").scores == decode_run(outputs).scores
    assert len(list((tmp_path / "cache").iterdir())) == 2 * len(RUNS)
    for path in (tmp_path / "cache").iterdir():
        path.write_bytes(b"not a pickle")
    assert derived(tmp_path / "runs", tmp_path / "cache").decodings("run_a").scores == decode_run(outputs).scores


def test_the_modes_asked_for_are_part_of_the_key(tmp_path):
    write_outputs(tmp_path / "runs")
    cache = DerivedCache(tmp_path / "cache")
    path = dev_outputs_path(tmp_path / "runs", "run_a")
    keys = {cache.key(path, None, True), cache.key(path, ("outside",), True), cache.key(path, ("outside",), False)}
    assert len(keys) == 3 and cache.key(path, ["outside"], True) in keys


def test_the_fingerprint_covers_the_code_a_derived_run_depends_on():
    functions = [
        calibrate_run,
        decode_run,
        DevScorer,
        search_bias,
        BiasScan,
        Objective,
        EntityCounter,
        scores_from_counts,
        decode,
        viterbi_decode,
        tag_constraints,
        conlleval_split,
        DevRuns,
        load_dev_outputs,
        DerivedCache,
    ]
    assert {function.__module__ for function in functions} <= set(DERIVING_MODULES)
