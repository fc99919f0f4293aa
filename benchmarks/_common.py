"""What the training and evaluation benchmarks share: WNUT-17 run arguments, timing, machine, output.

`bench_trainer_step.py`, `bench_epoch.py` and `bench_evaluation.py` build their trainers with
`ner_imbalance.training.run.build_trainer` from the arguments made here, so they time the code path
that `scripts/train_ner.py` runs: the packaged MiniLM on WNUT-17 (`../shared/data/wnut17`).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import transformers

from ner_imbalance.config.arguments import (
    DataArguments,
    LossArguments,
    ModelArguments,
    NerTrainingArguments,
)
from ner_imbalance.utils.environment import machine_info as machine_info  # the benchmarks' `common.machine_info`

RESULTS_DIR = Path(__file__).parent / "results"
DEFAULT_DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "wnut17"
RunArguments = tuple[ModelArguments, DataArguments, LossArguments, NerTrainingArguments]


def benchmark_parser(description: str, default_json: Path) -> argparse.ArgumentParser:
    """A parser with the options every benchmark takes: `--data_dir`, `--device`, `--bf16`,
    `--threads` and `--json`."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--data_dir", "--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="Folder with train.conll, dev.conll."
    )
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--bf16", action="store_true", help="bf16 mixed precision (the Trainer's --bf16).")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads of torch (default: torch's own).")
    parser.add_argument("--json", type=Path, default=default_json, help="Where to write the results.")
    return parser


def parse_options(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """Parse the command line; set torch's CPU threads as asked and silence model-loading reports."""
    options = parser.parse_args()
    if options.threads is not None:
        torch.set_num_threads(options.threads)
    transformers.logging.set_verbosity_error()
    return options


def command_line() -> str:
    return " ".join(["python", *sys.argv])


def run_arguments(
    options: argparse.Namespace, *, loss: str = "focal", with_dev: bool = False, **training_overrides: Any
) -> RunArguments:
    """The arguments of one WNUT-17 run with the packaged model and the library defaults.

    No evaluation, checkpoints or reporting during training (the benchmarks call `evaluate`
    themselves); `training_overrides` replace any `NerTrainingArguments` field.
    """
    data_args = DataArguments(
        train_file=str(options.data_dir / "train.conll"),
        validation_file=str(options.data_dir / "dev.conll") if with_dev else None,
    )
    training: dict[str, Any] = {
        "output_dir": tempfile.mkdtemp(prefix="ner_bench_"),
        "eval_strategy": "no",
        "save_strategy": "no",
        "load_best_model_at_end": False,
        "report_to": "none",
        "disable_tqdm": True,
        "use_cpu": options.device == "cpu",
        "bf16": options.bf16,
    }
    training.update(training_overrides)
    return ModelArguments(), data_args, LossArguments(loss=loss), NerTrainingArguments(**training)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def machine_line(machine: dict[str, Any]) -> str:
    gpu = f", {machine['gpu']}" if machine["gpu"] else ""
    return (
        f"{machine['cpu']} ({machine['cpu_count']} cores, {machine['torch_threads']} torch threads){gpu}, "
        f"torch {machine['torch']}, transformers {machine['transformers']}"
    )


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A markdown table; the first column is left-aligned, the others right-aligned."""
    lines = [
        "| " + " | ".join(headers) + " |",
        "| --- |" + " ---: |" * (len(headers) - 1),
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def publish(report: dict[str, Any], tables: str, path: Path) -> None:
    """Print the markdown tables and write the report as JSON."""
    print(tables, end="\n\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {path}")
