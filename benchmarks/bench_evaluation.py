"""Time of evaluation with its metric step: `trainer.evaluate()` on WNUT-17 dev, and `ner-evaluate`.

    python benchmarks/bench_evaluation.py [--repeats 3] [--train_steps 0] [--script_tokens 25000]
        [--device cpu|cuda] [--bf16] [--threads N] [--json PATH]

1. `trainer.evaluate()` of the trainer `ner_imbalance.training.run.build_trainer` makes (packaged
   MiniLM, WNUT-17 dev sorted by length, `argmax_logits`, the real `WordLevelMetrics`), after
   `--train_steps` training steps (default 0: an untrained head, whose many spurious entities are
   the worst case for the metric step). Its `compute_metrics` is wrapped to time it; the metric
   step is further split into the merge of window predictions to word tags and `evaluate_tags`.
   One untimed evaluation first, then the median of `--repeats`.
2. `ner-evaluate --pred FILE` on a `token gold pred` file of `--script_tokens` words
   (WNUT-17 dev then train sentences, 10 % of the predicted tags replaced at random, written with
   `ner_imbalance.evaluation.scores.write_predictions` to a temporary folder): the whole command in a
   fresh interpreter, `main()` in this process, and its parts (reading the file, `evaluate_tags`).
Prints markdown tables and writes JSON (default `benchmarks/results/bench_evaluation.json`).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _common as common
from _timing import timed_ms
from transformers import EvalPrediction

from ner_imbalance.cli import evaluate as evaluate_command
from ner_imbalance.data.labels import build_label_list
from ner_imbalance.data.readers import load_corpus
from ner_imbalance.evaluation import (
    evaluate_tags,
    read_gold_and_pred,
    write_predictions,
)
from ner_imbalance.training.metrics import WordLevelMetrics
from ner_imbalance.training.run import build_trainer

PERTURBED_SHARE = 0.1


class TimedMetrics:
    """Wraps `compute_metrics`: milliseconds of every call, and the last prediction it scored."""

    def __init__(self, metrics: WordLevelMetrics) -> None:
        self.metrics = metrics
        self.milliseconds: list[float] = []
        self.last_prediction: EvalPrediction | None = None

    def __call__(self, prediction: EvalPrediction) -> dict[str, float]:
        start = time.perf_counter()
        scores = self.metrics(prediction)
        self.milliseconds.append(1e3 * (time.perf_counter() - start))
        self.last_prediction = prediction
        return scores


def repeated_ms(run: Callable[[], object], repeats: int, device: str = "cpu") -> float:
    """Median milliseconds of `repeats` calls of `run` after one untimed call."""
    run()
    return common.median([timed_ms(run, device) for _ in range(repeats)])


def trainer_evaluation(options: argparse.Namespace) -> dict[str, Any]:
    """`trainer.evaluate()` on WNUT-17 dev and the share of its metric step."""
    overrides: dict[str, Any] = {"max_steps": options.train_steps} if options.train_steps else {}
    trainer, corpus = build_trainer(*common.run_arguments(options, with_dev=True, **overrides))
    if options.train_steps:
        trainer.train()
    metrics = TimedMetrics(trainer.compute_metrics)
    trainer.compute_metrics = metrics
    trainer.evaluate()
    evaluate_ms, metric_ms = [], []
    for _ in range(options.repeats):
        evaluate_ms.append(timed_ms(trainer.evaluate, options.device))
        metric_ms.append(metrics.milliseconds[-1])
    predictions = metrics.last_prediction.predictions
    word_tags = metrics.metrics.word_predictions(predictions).tags
    gold = metrics.metrics.gold_tags
    return {
        "sentences": len(corpus.words["validation"]),
        "windows": len(corpus.windows["validation"]),
        "words": sum(map(len, gold)),
        "train_steps": options.train_steps,
        "evaluate_ms": common.median(evaluate_ms),
        "compute_metrics_ms": common.median(metric_ms),
        "metric_share": common.median(metric_ms) / common.median(evaluate_ms),
        "merge_windows_ms": repeated_ms(lambda: metrics.metrics.word_predictions(predictions).tags, options.repeats),
        "evaluate_tags_ms": repeated_ms(lambda: evaluate_tags(gold, word_tags), options.repeats),
    }


def perturbed_predictions_file(data_dir: Path, num_tokens: int, folder: Path) -> tuple[Path, int]:
    """A `token gold pred` file of at least `num_tokens` words, and its word count."""
    corpus, _sources = load_corpus(
        train_file=str(data_dir / "train.conll"), validation_file=str(data_dir / "dev.conll")
    )
    labels = build_label_list(corpus["train"]["tags"])
    generator = random.Random(0)
    tokens, gold, pred = [], [], []
    sentences = [(row["tokens"], row["tags"]) for split in ("validation", "train") for row in corpus[split]]
    for words, tags in sentences:
        if sum(map(len, tokens)) >= num_tokens:
            break
        tokens.append(words)
        gold.append(tags)
        pred.append([generator.choice(labels) if generator.random() < PERTURBED_SHARE else tag for tag in tags])
    path = folder / "predictions.conll"
    write_predictions(path, tokens, gold, pred)
    return path, sum(map(len, tokens))


def script_evaluation(options: argparse.Namespace) -> dict[str, Any]:
    """`ner-evaluate` on a perturbed predictions file: whole command and its parts."""
    with tempfile.TemporaryDirectory() as folder:
        path, num_tokens = perturbed_predictions_file(options.data_dir, options.script_tokens, Path(folder))
        command = [sys.executable, "-m", "ner_imbalance.cli.evaluate", "--pred", str(path)]

        def run_main() -> None:
            with contextlib.redirect_stdout(io.StringIO()):
                evaluate_command.main(["--pred", str(path)])

        def run_command() -> None:
            subprocess.run(command, check=True, capture_output=True)

        _tokens, gold, pred = read_gold_and_pred(path)
        return {
            "tokens": num_tokens,
            "command_ms": repeated_ms(run_command, options.repeats),
            "main_ms": repeated_ms(run_main, options.repeats),
            "read_file_ms": repeated_ms(lambda: read_gold_and_pred(path), options.repeats),
            "evaluate_tags_ms": repeated_ms(lambda: evaluate_tags(gold, pred), options.repeats),
        }


def share_row(part: str, milliseconds: float, total: float) -> list[str]:
    return [part, f"{milliseconds:.1f}", f"{100 * milliseconds / total:.2f} %"]


def report_tables(report: dict[str, Any]) -> str:
    trainer, script = report["trainer_evaluate"], report["evaluate_ner_script"]
    total = trainer["evaluate_ms"]
    trainer_rows = [
        share_row("trainer.evaluate() (forward, gathering, compute_metrics)", total, total),
        share_row("compute_metrics (WordLevelMetrics)", trainer["compute_metrics_ms"], total),
        share_row("- merge window predictions to word tags", trainer["merge_windows_ms"], total),
        share_row("- evaluate_tags (entities, scores)", trainer["evaluate_tags_ms"], total),
    ]
    command = script["command_ms"]
    script_rows = [
        share_row("ner-evaluate --pred FILE (fresh interpreter)", command, command),
        share_row("main() in a warm process", script["main_ms"], command),
        share_row("- read_gold_and_pred", script["read_file_ms"], command),
        share_row("- evaluate_tags", script["evaluate_tags_ms"], command),
        share_row("interpreter start and imports (command - main)", command - script["main_ms"], command),
    ]
    trainer_title = (
        f"WNUT-17 dev: {trainer['sentences']} sentences, {trainer['windows']} windows, {trainer['words']} words, "
        f"after {trainer['train_steps']} training steps"
    )
    return "\n\n".join(
        [
            common.machine_line(report["machine"]),
            trainer_title,
            common.markdown_table(["part", "ms", "share"], trainer_rows),
            f"evaluate_ner.py on {script['tokens']} words",
            common.markdown_table(["part", "ms", "share of the command"], script_rows),
        ]
    )


def main() -> None:
    parser = common.benchmark_parser(__doc__, common.RESULTS_DIR / "bench_evaluation.json")
    parser.add_argument("--repeats", type=int, default=3, help="Timed repeats (the median is reported).")
    parser.add_argument("--train_steps", "--train-steps", type=int, default=0, help="Training steps before evaluating.")
    parser.add_argument(
        "--script_tokens", "--script-tokens", type=int, default=25000, help="Words of the predictions file."
    )
    options = common.parse_options(parser)
    report = {
        "command": common.command_line(),
        "machine": common.machine_info(options.device),
        "trainer_evaluate": trainer_evaluation(options),
        "evaluate_ner_script": script_evaluation(options),
    }
    common.publish(report, report_tables(report), options.json)


if __name__ == "__main__":
    main()
