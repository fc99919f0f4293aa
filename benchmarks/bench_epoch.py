"""Wall time and padded-token share of one training epoch over WNUT-17 train, for three batchings.

    python benchmarks/bench_epoch.py [--settings fixed128 random grouped] [--max_steps N] [--update]
        [--device cpu|cuda] [--bf16] [--threads N] [--json PATH]

Settings (same windows, model, seed, loss (the library default) and learning rate; batches of 16):
- `fixed128`: random batches padded to a fixed 128 sub-tokens (`padding="max_length"`), what
  many NER examples do;
- `random`: random batches, dynamic padding to the longest window of the batch;
- `grouped`: `train_sampling_strategy="group_by_length"` with the precomputed `length` column
  and dynamic padding: the library default.

Each setting runs `trainer.train()` built by `ner_imbalance.training.run.build_trainer`; the wall
time covers the whole `train()` call (sampler, collation, steps, the logging every 50 steps).
The padded share is padded / all tokens of the batches actually fed, counted by a wrapper around
the collator, which also gives the share the same batches would have padded to a multiple of 8
(the pipeline's collator on GPU). With `--max_steps N` each setting runs N steps only and the epoch time is
extrapolated as ms/step times the steps of an epoch (reported as such). With `--update` the
settings not run keep their results from the JSON file, so the settings can be run one at a time.
Prints a markdown table and writes JSON (default `benchmarks/results/bench_epoch.json`).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable
from typing import Any

import _common as common
import torch
from transformers import DataCollatorForTokenClassification

from ner_imbalance.training.run import build_trainer

FIXED_LENGTH = 128
SETTINGS = {
    "fixed128": ("random", "random batches, padded to 128"),
    "random": ("random", "random batches, dynamic padding"),
    "grouped": ("group_by_length", "length-grouped batches, dynamic padding (default)"),
}


class PaddingCounter:
    """A collator wrapper that counts the real and all tokens of every batch it makes, and all
    tokens the same batches would hold padded to a multiple of 8 (`pad_to_multiple_of=8`, the
    pipeline's collator on GPU)."""

    def __init__(self, collator: Callable[[list[dict]], dict[str, torch.Tensor]]) -> None:
        self.collator = collator
        self.real_tokens = 0
        self.all_tokens = 0
        self.all_tokens_multiple_of_8 = 0

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        batch = self.collator(features)
        mask = batch["attention_mask"]
        rows, width = mask.shape
        self.real_tokens += int(mask.sum())
        self.all_tokens += rows * width
        self.all_tokens_multiple_of_8 += rows * 8 * math.ceil(width / 8)
        return batch


def run_setting(options: argparse.Namespace, setting: str) -> dict[str, Any]:
    """Train one epoch (or `--max_steps`) with one batching; time, steps and padding."""
    strategy, _description = SETTINGS[setting]
    overrides: dict[str, Any] = {"num_train_epochs": 1, "train_sampling_strategy": strategy}
    if options.max_steps:
        overrides["max_steps"] = options.max_steps
    trainer, corpus = build_trainer(*common.run_arguments(options, **overrides))
    collator = trainer.data_collator
    if setting == "fixed128":
        collator = DataCollatorForTokenClassification(
            trainer.processing_class, padding="max_length", max_length=FIXED_LENGTH
        )
    counter = PaddingCounter(collator)
    trainer.data_collator = counter
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    steps = trainer.state.global_step
    steps_per_epoch = math.ceil(len(corpus.windows["train"]) / trainer.args.per_device_train_batch_size)
    return {
        "description": SETTINGS[setting][1],
        "steps": steps,
        "steps_per_epoch": steps_per_epoch,
        "seconds": seconds,
        "ms_per_step": 1e3 * seconds / steps,
        "epoch_seconds": seconds if steps == steps_per_epoch else seconds / steps * steps_per_epoch,
        "extrapolated": steps != steps_per_epoch,
        "real_tokens": counter.real_tokens,
        "all_tokens": counter.all_tokens,
        "padded_share": 1 - counter.real_tokens / counter.all_tokens,
        "padded_share_multiple_of_8": 1 - counter.real_tokens / counter.all_tokens_multiple_of_8,
    }


def report_table(report: dict[str, Any]) -> str:
    results = report["results"]
    fixed = results.get("fixed128")
    headers = [
        "batching",
        "steps",
        "ms/step",
        "epoch s",
        "vs fixed 128",
        "padded share",
        "tokens fed",
        "padded share at multiples of 8",
    ]
    rows = [
        [
            result["description"],
            f"{result['steps']}/{result['steps_per_epoch']}",
            f"{result['ms_per_step']:.0f}",
            f"{result['epoch_seconds']:.1f}" + (" (extrapolated)" if result["extrapolated"] else ""),
            f"{result['epoch_seconds'] / fixed['epoch_seconds']:.2f}x" if fixed else "-",
            f"{100 * result['padded_share']:.1f} %",
            f"{result['all_tokens']}",
            f"{100 * result['padded_share_multiple_of_8']:.1f} %",
        ]
        for result in results.values()
    ]
    title = f"{common.machine_line(report['machine'])}; one epoch of WNUT-17 train"
    return f"{title}\n\n{common.markdown_table(headers, rows)}"


def main() -> None:
    parser = common.benchmark_parser(__doc__, common.RESULTS_DIR / "bench_epoch.json")
    parser.add_argument("--settings", nargs="+", choices=list(SETTINGS), default=list(SETTINGS))
    parser.add_argument(
        "--max_steps", "--max-steps", type=int, default=None, help="Steps per setting (default: a full epoch)."
    )
    parser.add_argument(
        "--update", action="store_true", help="Keep the other settings' results already in --json (runs in parts)."
    )
    options = common.parse_options(parser)
    command = common.command_line()
    results = json.loads(options.json.read_text())["results"] if options.update and options.json.exists() else {}
    results.update({setting: {**run_setting(options, setting), "command": command} for setting in options.settings})
    ordered = {name: results[name] for name in SETTINGS if name in results}
    report = {"machine": common.machine_info(options.device), "results": ordered}
    common.publish(report, report_table(report), options.json)


if __name__ == "__main__":
    main()
