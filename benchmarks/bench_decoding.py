"""Time and entity F1 of argmax and Viterbi decoding on stored WNUT-17 dev word logits.

    python benchmarks/bench_decoding.py [--logits FILE] [--all] [--scheme iob2] [--repeats 50] [--warmup 3]
        [--json PATH]

1. Reads one run's dev word logits (`--logits`, default the CE seed-1 run of the convergence study:
   `logits` float16 `[words, labels]`, `gold` and `predicted` ids, `sentence_lengths`, `labels`) and times
   `ner_imbalance.decoding.decode` with `method="argmax"` and `method="viterbi"` (round-robin rounds after
   `--warmup` untimed ones; the median of `--repeats`). Prints one JSON line with `argmax_seconds`,
   `viterbi_seconds`, `num_words`, `num_sentences`, to set against an evaluation pass.
2. Entity F1 against `gold` with seqeval's default (conlleval) mode of: the stored `predicted` ids, argmax
   decoding and Viterbi decoding. Sanity check: argmax decoding reproduces the stored predictions (and so
   their F1) except at words where two float16-rounded logits tie (5 words in 5 of the 27 WNUT-17 files).
3. With `--all`, the same F1 for every `results/runs/wnut17__keep1__*.logits.npz`: per setting (mean over its
   seeds) and the mean over all files.
Prints markdown tables and writes JSON (default `benchmarks/results/bench_decoding.json`).
"""

from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import _common as common
import numpy as np
from _timing import round_robin
from seqeval.metrics import f1_score

from ner_imbalance.constants import DECODING_METHODS
from ner_imbalance.decoding import decode

RUNS_DIR = Path(__file__).resolve().parents[1] / "results" / "runs"
DEFAULT_LOGITS = RUNS_DIR / "wnut17__keep1__ce__341a3523__seed1.logits.npz"
ALL_LOGITS = "wnut17__keep1__*.logits.npz"
SEED_SUFFIX = re.compile(r"__seed\d+$")


def load_logits(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as stored:
        return {key: stored[key] for key in ("logits", "gold", "predicted", "sentence_lengths", "labels")}


def entity_f1(gold: np.ndarray, predicted: np.ndarray, sentence_lengths: np.ndarray, labels: np.ndarray) -> float:
    """seqeval's micro entity F1 in its default (conlleval) mode, over the sentences of the word-level ids."""
    splits = np.cumsum(sentence_lengths)[:-1]
    gold_tags = [labels[ids].tolist() for ids in np.split(gold.astype(np.int64), splits)]
    predicted_tags = [labels[ids].tolist() for ids in np.split(predicted.astype(np.int64), splits)]
    return float(f1_score(gold_tags, predicted_tags))


def decoded_ids(stored: dict[str, np.ndarray], scheme: str, method: str) -> np.ndarray:
    return decode(stored["logits"], stored["sentence_lengths"], stored["labels"].tolist(), scheme=scheme, method=method)


def file_scores(path: Path, scheme: str) -> dict[str, Any]:
    """Entity F1 of the stored predictions and of both decodings of one logits file.

    Checks that argmax decoding reproduces the stored predictions except at words where the stored label ties
    the best logit after rounding to float16 (the predictions were taken from the unrounded logits).
    """
    stored = load_logits(path)
    decoded = {method: decoded_ids(stored, scheme, method) for method in DECODING_METHODS}
    logits = stored["logits"]
    unlike_stored = np.nonzero(decoded["argmax"] != stored["predicted"])[0]
    not_ties = unlike_stored[logits[unlike_stored, stored["predicted"][unlike_stored]] < logits[unlike_stored].max(1)]
    if not_ties.size:
        raise AssertionError(f"{path.name}: argmax differs from the stored predictions at words {not_ties[:10]}")

    def f1_of(ids: np.ndarray) -> float:
        return entity_f1(stored["gold"], ids, stored["sentence_lengths"], stored["labels"])

    return {
        "file": path.name,
        "stored_predicted_f1": f1_of(stored["predicted"]),
        **{f"{method}_f1": f1_of(ids) for method, ids in decoded.items()},
        "argmax_float16_ties_unlike_stored": len(unlike_stored),
        "viterbi_words_unlike_argmax": int(np.count_nonzero(decoded["viterbi"] != decoded["argmax"])),
    }


def decoding_timings(path: Path, scheme: str, repeats: int, warmup: int) -> dict[str, Any]:
    """Median seconds of `decode` per method on one file, round-robin rounds after `warmup` untimed ones."""
    stored = load_logits(path)
    cases = {method: [lambda method=method: decoded_ids(stored, scheme, method)] for method in DECODING_METHODS}
    milliseconds = round_robin(cases, "cpu", warmup, repeats)
    return {
        **{f"{method}_seconds": common.median(milliseconds[method]) / 1e3 for method in DECODING_METHODS},
        "num_words": len(stored["logits"]),
        "num_sentences": len(stored["sentence_lengths"]),
        "num_labels": len(stored["labels"]),
        "repeats": repeats,
        "warmup": warmup,
    }


def settings_summary(per_file: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean F1 of each setting (a run id without its `__seedN`) over its seeds."""
    by_setting: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for scores in per_file:
        by_setting[SEED_SUFFIX.sub("", scores["file"].removesuffix(".logits.npz"))].append(scores)
    return [
        {
            "setting": setting,
            "seeds": len(runs),
            **{f"{method}_f1": float(np.mean([run[f"{method}_f1"] for run in runs])) for method in DECODING_METHODS},
        }
        for setting, runs in sorted(by_setting.items())
    ]


def report_tables(report: dict[str, Any]) -> str:
    timings = report["timings"]
    scores = report["scores"]
    timing_rows = [
        [method, f"{1e3 * timings[f'{method}_seconds']:.2f}", f"{scores[f'{method}_f1'] * 100:.2f}"]
        for method in DECODING_METHODS
    ]
    parts = [
        common.machine_line(report["machine"]),
        f"{scores['file']}: {timings['num_sentences']} sentences, {timings['num_words']} words, "
        f"{timings['num_labels']} labels; stored predictions F1 {100 * scores['stored_predicted_f1']:.2f} "
        f"({scores['argmax_float16_ties_unlike_stored']} float16 ties decoded unlike them); "
        f"Viterbi changes {scores['viterbi_words_unlike_argmax']} words",
        common.markdown_table(["decoding", "median ms", "entity F1 (conlleval)"], timing_rows),
    ]
    if "settings" in report:
        rows = [
            [
                setting["setting"],
                str(setting["seeds"]),
                f"{100 * setting['argmax_f1']:.2f}",
                f"{100 * setting['viterbi_f1']:.2f}",
                f"{100 * (setting['viterbi_f1'] - setting['argmax_f1']):+.2f}",
            ]
            for setting in report["settings"]
        ]
        mean = report["mean_over_files"]
        rows.append(
            [
                f"mean over {mean['files']} files",
                "",
                f"{100 * mean['argmax_f1']:.2f}",
                f"{100 * mean['viterbi_f1']:.2f}",
                f"{100 * (mean['viterbi_f1'] - mean['argmax_f1']):+.2f}",
            ]
        )
        parts.append(common.markdown_table(["setting", "seeds", "argmax F1", "Viterbi F1", "difference"], rows))
    return "\n\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--logits", type=Path, default=DEFAULT_LOGITS, help="Word-logits file to time and score.")
    parser.add_argument("--all", action="store_true", help=f"Also score every {ALL_LOGITS} in {RUNS_DIR}.")
    parser.add_argument("--scheme", default="iob2", help="Tag scheme of the labels (iob2, iobes, bioes).")
    parser.add_argument("--repeats", type=int, default=50, help="Timed rounds (the median is reported).")
    parser.add_argument("--warmup", type=int, default=3, help="Untimed rounds first.")
    parser.add_argument("--json", type=Path, default=common.RESULTS_DIR / "bench_decoding.json")
    options = parser.parse_args()

    timings = decoding_timings(options.logits, options.scheme, options.repeats, options.warmup)
    print(
        json.dumps({key: timings[key] for key in ("argmax_seconds", "viterbi_seconds", "num_words", "num_sentences")})
    )
    report: dict[str, Any] = {
        "command": common.command_line(),
        "machine": common.machine_info("cpu"),
        "timings": timings,
        "scores": file_scores(options.logits, options.scheme),
    }
    if options.all:
        per_file = [file_scores(path, options.scheme) for path in sorted(RUNS_DIR.glob(ALL_LOGITS))]
        report["files"] = per_file
        report["settings"] = settings_summary(per_file)
        report["mean_over_files"] = {
            "files": len(per_file),
            **{
                f"{method}_f1": float(np.mean([scores[f"{method}_f1"] for scores in per_file]))
                for method in DECODING_METHODS
            },
        }
    common.publish(report, report_tables(report), options.json)


if __name__ == "__main__":
    main()
