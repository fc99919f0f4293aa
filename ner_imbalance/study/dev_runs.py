"""The report's work on the runs' stored dev outputs: each run read and derived once, in parallel over runs.

Several tables of the report need the same run: the per-sentence counts of its stored predictions
(paired intervals to CE), its cross-fitted calibration (`crossfit.calibrate_run`) and its dev scores
re-decoded under argmax and Viterbi (`decoding.decode_run`). `DevRuns` reads each
`<run_id>.logits.npz` once, derives what the report's sections ask of it, one process per core,
and keeps the results for every table. Each result is a pure function of the run's stored file,
so the report does not depend on the process or the order the runs were derived in, and a result
derived by an earlier report is read back from the disk cache (`derived_cache.DerivedCache`)
instead of being derived again.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np

from ner_imbalance.calibration.search import CALIBRATION_MODES, NO_CALIBRATION
from ner_imbalance.study.convergence import records_by_seed
from ner_imbalance.study.crossfit import RunCalibration, calibrate_run
from ner_imbalance.study.decoding import RunDecodings, decode_run
from ner_imbalance.study.derived_cache import DerivedCache
from ner_imbalance.study.records import dev_outputs_path, load_dev_outputs, require_dev_outputs
from ner_imbalance.study.scoring import DevScorer
from ner_imbalance.study.summary import Section

CALIBRATION_PURPOSE = "the cross-fitted calibration"


def calibration_modes(sections: Sequence[Section], records: Mapping[str, Mapping[str, Any]]) -> dict[str, list[str]]:
    """Run id -> the calibration modes (in `CALIBRATION_MODES` order) of every run of a section whose
    config asks for `calibration`; a run shared by two such sections gets the modes of both."""
    modes_of: dict[str, set[str]] = {}
    for section in sections:
        for summary in section.summaries if section.calibration else []:
            for record in records.values():
                if record["setting_id"] == summary.setting_id and record["seed"] in summary.seeds:
                    modes_of.setdefault(record["run_id"], set()).update(section.calibration)
    return {run_id: [mode for mode in CALIBRATION_MODES if mode in modes] for run_id, modes in modes_of.items()}


def section_run_ids(sections: Sequence[Section], records: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The run ids of every seed of every summary of the sections, sorted."""
    return sorted(
        {
            record["run_id"]
            for section in sections
            for summary in section.summaries
            for record in records_by_seed(records, summary.setting_id).values()
            if record["seed"] in summary.seeds
        }
    )


def _derive(
    results_dir: str | os.PathLike, run_id: str, modes: tuple[str, ...] | None, decode: bool
) -> tuple[RunCalibration | None, RunDecodings | None]:
    """One run's calibration (`modes`; None: none) and decodings (if `decode`), from one read of its file,
    each distinct tagging of it scored once (`scoring.DevScorer`)."""
    outputs = load_dev_outputs(dev_outputs_path(results_dir, run_id))
    scorer = DevScorer(outputs)
    return (
        None if modes is None else calibrate_run(outputs, modes, scorer=scorer),
        decode_run(outputs, scorer) if decode else None,
    )


class DevRuns:
    """The runs' stored dev outputs of one results folder, and what the report derives from them, kept.

    `derive` computes a batch of runs in `workers` processes (default: one per usable core), reading
    back those `cache` holds (None: no disk cache) and storing the others there;
    `calibration`, `decodings` and `counts` return a kept result or derive it on the spot.
    """

    def __init__(
        self, results_dir: str | os.PathLike, workers: int | None = None, cache: DerivedCache | None = None
    ) -> None:
        self.results_dir = results_dir
        self.workers = workers or len(os.sched_getaffinity(0))
        self.cache = cache
        self._calibrations: dict[tuple[str, tuple[str, ...]], RunCalibration] = {}
        self._decodings: dict[str, RunDecodings] = {}

    def has_outputs(self, run_id: str) -> bool:
        return dev_outputs_path(self.results_dir, run_id).is_file()

    def derive(self, calibrations: Mapping[str, Sequence[str]], decodings: Iterable[str]) -> None:
        """Calibrate each run of `calibrations` with its modes (`MissingDevOutputsError` naming the first
        missing file, before any work) and decode each run of `decodings`, every run read once."""
        for run_id in calibrations:
            if not self.has_outputs(run_id):
                require_dev_outputs(self.results_dir, run_id, CALIBRATION_PURPOSE)
        to_decode = {run_id for run_id in decodings if run_id not in self._decodings}
        to_calibrate = {
            run_id: tuple(modes)
            for run_id, modes in calibrations.items()
            if (run_id, tuple(modes)) not in self._calibrations
        }
        run_ids = sorted(to_decode | to_calibrate.keys())
        asked = {run_id: (to_calibrate.get(run_id), run_id in to_decode) for run_id in run_ids}
        keys = {
            run_id: self.cache.key(dev_outputs_path(self.results_dir, run_id), *asked[run_id])
            for run_id in (run_ids if self.cache else [])
        }
        results = {run_id: self.cache.load(key) for run_id, key in keys.items()}
        missing = [run_id for run_id in run_ids if results.get(run_id) is None]
        arguments = (
            [self.results_dir] * len(missing),
            missing,
            [asked[run_id][0] for run_id in missing],
            [asked[run_id][1] for run_id in missing],
        )
        if self.workers > 1 and len(missing) > 1:
            with ProcessPoolExecutor(max_workers=min(self.workers, len(missing))) as pool:
                derived = list(pool.map(_derive, *arguments))
        else:
            derived = list(map(_derive, *arguments))
        for run_id, result in zip(missing, derived):
            results[run_id] = result
            if self.cache:
                self.cache.store(keys[run_id], result)
        for run_id in run_ids:
            calibration, decoded = results[run_id]
            if calibration is not None:
                self._calibrations[run_id, to_calibrate[run_id]] = calibration
            if decoded is not None:
                self._decodings[run_id] = decoded

    def calibration(
        self, run_id: str, modes: Sequence[str] = (), needed_for: str = CALIBRATION_PURPOSE
    ) -> RunCalibration:
        """`calibrate_run` of the run's dev outputs; `MissingDevOutputsError` naming `needed_for` without them."""
        key = (run_id, tuple(modes))
        if key not in self._calibrations:
            if not self.has_outputs(run_id):
                require_dev_outputs(self.results_dir, run_id, needed_for)
            self.derive({run_id: modes}, [])
        return self._calibrations[key]

    def decodings(self, run_id: str) -> RunDecodings:
        """`decode_run` of the run's dev outputs."""
        if run_id not in self._decodings:
            self.derive({}, [run_id])
        return self._decodings[run_id]

    def counts(self, run_id: str, needed_for: str) -> np.ndarray:
        """`evaluation.bootstrap.sentence_counts` of the run's stored dev predictions (of any kept calibration)."""
        kept = next((run for (kept_id, _), run in self._calibrations.items() if kept_id == run_id), None)
        return (kept or self.calibration(run_id, (), needed_for)).counts[NO_CALIBRATION]

    def calibrated(self, calibrations: Mapping[str, Sequence[str]]) -> dict[str, RunCalibration]:
        """Run id -> its calibration with its modes, for each run of `calibrations`."""
        return {run_id: self.calibration(run_id, modes) for run_id, modes in calibrations.items()}

    def decoded(self, run_ids: Iterable[str]) -> dict[str, RunDecodings]:
        """Run id -> `decode_run` for each of `run_ids` whose dev outputs are stored."""
        return {run_id: self.decodings(run_id) for run_id in run_ids if self.has_outputs(run_id)}
