"""Time of the calibration search against one evaluation pass on WNUT-17 dev.

    python benchmarks/bench_calibration.py [--model FOLDER] [--repeats 5] [--device cpu|cuda]
        [--bf16] [--threads N] [--json PATH]

1. `trainer.evaluate()` of the trainer `ner_imbalance.training.run.build_trainer` makes for
   `--model` (default: the packaged MiniLM with an untrained head; give the folder of a trained
   run, e.g. `outputs/wnut17_focal`, for the realistic case) on WNUT-17 dev: one untimed call,
   then the median of `--repeats`. This is the baseline.
2. One prediction of dev that keeps the words' logits (`training.predictions.predict_split(...,
   logits=True)`, which gathers them once), timed once: what the pipeline adds to its validation pass.
3. `calibration.search_bias` on those word logits, `outside` and `per_type` with the default
   flags, for every calibration metric (`calibration.objective`), under each decoding (`argmax`, `viterbi`): median of
   `--repeats`, as a share of the evaluation. Target (issues 11 and 25): under 10 %. Each search's
   dev scores before calibration are checked against `evaluate_tags` on the tags of its decoding.
Prints markdown tables and writes JSON (default `benchmarks/results/bench_calibration.json`).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path
from typing import Any

import _common as common
from _timing import timed_ms

from ner_imbalance.calibration.objective import (
    BLEND,
    CALIBRATION_METRICS,
    DEFAULT_MACRO_WEIGHT,
    KEEP_RECALL,
    MACRO_F1,
    MICRO_F1,
)
from ner_imbalance.calibration.search import search_bias, tags_from_logits
from ner_imbalance.constants import CALIBRATION_MODES, DECODING_METHODS
from ner_imbalance.evaluation import evaluate_tags
from ner_imbalance.training.predictions import predict_split
from ner_imbalance.training.run import build_trainer

TARGET_SHARE = 0.10


def calibration_timings(options: argparse.Namespace) -> dict[str, Any]:
    model_args, data_args, loss_args, training_args = common.run_arguments(options, with_dev=True)
    if options.model is not None:
        model_args = dataclasses.replace(model_args, model_name_or_path=str(options.model))
    trainer, corpus = build_trainer(model_args, data_args, loss_args, training_args)
    trainer.evaluate()
    evaluate_ms = common.median([timed_ms(trainer.evaluate, options.device) for _ in range(options.repeats)])

    start = time.perf_counter()
    logits = predict_split(trainer, corpus, "validation", "eval", logits=True).word_logits
    predict_ms = 1e3 * (time.perf_counter() - start)

    gold = [list(tags) for tags in corpus.words["validation"]["tags"]]
    lengths = [len(tags) for tags in gold]
    searches = []
    for decoding in DECODING_METHODS:
        tags = tags_from_logits(logits, lengths, corpus.label_list, scheme=corpus.scheme, decoding=decoding)
        reference = evaluate_tags(gold, tags)
        for mode in CALIBRATION_MODES:
            for metric in CALIBRATION_METRICS:

                def search(mode: str = mode, metric: str = metric, decoding: str = decoding) -> Any:
                    return search_bias(
                        logits,
                        gold,
                        corpus.label_list,
                        mode=mode,
                        metric=metric,
                        scheme=corpus.scheme,
                        decoding=decoding,
                    )

                result = search()
                expected = {
                    MICRO_F1: reference["f1"],
                    MACRO_F1: reference["macro_f1"],
                    KEEP_RECALL: reference["f1"],
                    BLEND: (1 - DEFAULT_MACRO_WEIGHT) * reference["f1"] + DEFAULT_MACRO_WEIGHT * reference["macro_f1"],
                }[metric]
                if result.score_before != expected:
                    raise AssertionError(
                        f"{decoding} {mode}/{metric}: search scores {result.score_before}, evaluate_tags {expected}"
                    )
                milliseconds = common.median([timed_ms(search, "cpu") for _ in range(options.repeats)])
                searches.append(
                    {
                        "decoding": decoding,
                        "mode": mode,
                        "metric": metric,
                        "search_ms": milliseconds,
                        "share_of_evaluate": milliseconds / evaluate_ms,
                        "candidates": result.candidates,
                        "rounds": result.rounds,
                        "score_before": result.score_before,
                        "score_after": result.score_after,
                        "nonzero_biases": result.nonzero_biases(),
                    }
                )
    return {
        "model": str(options.model) if options.model else "packaged MiniLM, untrained head",
        "sentences": len(gold),
        "words": sum(lengths),
        "labels": len(corpus.label_list),
        "evaluate_ms": evaluate_ms,
        "predict_word_logits_ms": predict_ms,
        "searches": searches,
    }


def report_tables(report: dict[str, Any]) -> str:
    timings = report["calibration"]
    total = timings["evaluate_ms"]
    rows = [
        ["trainer.evaluate() (baseline)", f"{total:.1f}", "100.00 %", "", ""],
        [
            "predict dev keeping the word logits",
            f"{timings['predict_word_logits_ms']:.1f}",
            f"{100 * timings['predict_word_logits_ms'] / total:.2f} %",
            "",
            "",
        ],
    ]
    for search in timings["searches"]:
        rows.append(
            [
                f"search_bias {search['decoding']}, {search['mode']}, {search['metric']} "
                f"({search['candidates']} candidates)",
                f"{search['search_ms']:.1f}",
                f"{100 * search['share_of_evaluate']:.2f} %",
                f"{100 * search['score_before']:.2f} -> {100 * search['score_after']:.2f}",
                "yes" if search["share_of_evaluate"] < TARGET_SHARE else "no",
            ]
        )
    title = (
        f"WNUT-17 dev: {timings['sentences']} sentences, {timings['words']} words, {timings['labels']} labels; "
        f"model: {timings['model']}"
    )
    return "\n\n".join(
        [
            common.machine_line(report["machine"]),
            title,
            common.markdown_table(["part", "ms", "share of evaluate", "dev score", "< 10 %"], rows),
        ]
    )


def main() -> None:
    parser = common.benchmark_parser(__doc__, common.RESULTS_DIR / "bench_calibration.json")
    parser.add_argument("--model", type=Path, default=None, help="Model folder (default: the packaged MiniLM).")
    parser.add_argument("--repeats", type=int, default=5, help="Timed repeats (the median is reported).")
    options = common.parse_options(parser)
    report = {
        "command": common.command_line(),
        "machine": common.machine_info(options.device),
        "calibration": calibration_timings(options),
    }
    common.publish(report, report_tables(report), options.json)


if __name__ == "__main__":
    main()
