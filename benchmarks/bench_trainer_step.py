"""Time of one training step, `ImbalanceTrainer` with each loss vs the plain `transformers.Trainer`.

    python benchmarks/bench_trainer_step.py [--batches 20] [--repeats 40] [--warmup 4]
        [--device cpu|cuda] [--bf16] [--torch_compile] [--pad_to_multiple_of N] [--threads N] [--json PATH]

A step is what `Trainer.train` does per optimizer update: `trainer.training_step` (forward, loss,
backward), gradient clipping, `optimizer.step()`, `lr_scheduler.step()` and `zero_grad`. Every
configuration is built by `ner_imbalance.training.run.build_trainer` (same seed: same initial
weights, AdamW, library defaults) and prepared by its accelerator as `train()` would (mixed
precision, `torch.compile`). The plain baseline is `transformers.Trainer` on the same model,
collator and arguments, the model computing its own cross-entropy from `labels`; a second plain
Trainer, built last, is the control (identical code: its ratio is the measurement's noise floor).

The batches are the first `--batches` batches of 16 real WNUT-17 training windows from the
`ImbalanceTrainer`'s own dataloader (length-grouped, dynamically padded), collated once. Each
round runs every configuration once on the same batch, in an order that rotates by one each
round, so that machine drift and cache effects hit all alike. After `--warmup` untimed rounds,
the median of `--repeats` rounds is reported with two ratios to the plain Trainer: of the
medians, and the median of the per-round (same batch) ratios. The loss alone (forward+backward
on random logits of each batch's shape) is timed the same way to give its share of the step;
tokens/s counts the real (not padded) tokens. On CUDA, the peak memory of a step is reported too.
Prints a markdown table and writes JSON (default `benchmarks/results/bench_trainer_step.json`).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from itertools import islice
from typing import Any

import _common as common
import torch
from _timing import round_robin, synchronize
from torch import nn
from transformers import Trainer

from ner_imbalance.losses import LOSS_NAMES
from ner_imbalance.training.run import build_trainer
from ner_imbalance.training.trainer import ImbalanceTrainer

PLAIN = "Trainer (model's CE)"
CONTROL = "Trainer (model's CE), 2nd instance"
PLAIN_CONFIGURATIONS = (PLAIN, CONTROL)
Batch = dict[str, torch.Tensor]


def build_configurations(options: argparse.Namespace) -> dict[str, Trainer]:
    """The plain Trainer, one ImbalanceTrainer per loss and a second plain Trainer (the control: its
    ratio to the first shows what identical code measures as), each with a freshly loaded model."""
    overrides = {"torch_compile": options.torch_compile}
    trainers: dict[str, Trainer] = {}
    for name in (PLAIN, *LOSS_NAMES, CONTROL):
        run_arguments = common.run_arguments(options, loss=name if name in LOSS_NAMES else "ce", **overrides)
        trainer, _corpus = build_trainer(*run_arguments)
        if name in PLAIN_CONFIGURATIONS:
            trainer = Trainer(
                model=trainer.model,
                args=trainer.args,
                data_collator=trainer.data_collator,
                train_dataset=trainer.train_dataset,
                processing_class=trainer.processing_class,
            )
        trainers[name] = trainer
    return trainers


def prepare_for_steps(trainer: Trainer, num_steps: int) -> nn.Module:
    """Optimizer, scheduler and accelerator wrapping as `Trainer.train` sets them up; the model to step."""
    trainer.create_optimizer()
    model, trainer.optimizer = trainer.accelerator.prepare(trainer.model, trainer.optimizer)
    trainer.create_scheduler(num_training_steps=num_steps, optimizer=trainer.optimizer)
    trainer.model_wrapped = model
    return model


def optimizer_step(trainer: Trainer, model: nn.Module, batch: Batch) -> None:
    """One update of `Trainer`'s inner loop (no gradient accumulation)."""
    num_items_in_batch = trainer._get_num_items_in_batch([batch], trainer.args.device)
    trainer.training_step(model, batch, num_items_in_batch)
    if trainer.args.max_grad_norm > 0:
        trainer.accelerator.clip_grad_norm_(model.parameters(), trainer.args.max_grad_norm)
    trainer.optimizer.step()
    trainer.lr_scheduler.step()
    model.zero_grad()


def loss_only(trainer: Trainer, batch: Batch, num_labels: int, dtype: torch.dtype) -> Callable[[], None]:
    """Forward+backward of the configuration's loss alone, on random logits of the batch's shape."""
    labels = batch["labels"]
    logits = torch.randn(*labels.shape, num_labels, device=labels.device, dtype=dtype, requires_grad=True)
    if isinstance(trainer, ImbalanceTrainer):
        num_items_in_batch = trainer._get_num_items_in_batch([batch], trainer.args.device)

        def loss() -> torch.Tensor:
            return trainer.loss_fn(logits, labels, num_items_in_batch=num_items_in_batch)

    else:
        cross_entropy = nn.CrossEntropyLoss()  # what BertForTokenClassification computes from `labels`

        def loss() -> torch.Tensor:
            return cross_entropy(logits.view(-1, num_labels), labels.view(-1))

    def run() -> None:
        logits.grad = None
        loss().backward()

    return run


def peak_step_memory_mib(trainer: Trainer, model: nn.Module, batches: list[Batch], device: torch.device) -> float:
    """CUDA only: the most memory one step allocates above what was allocated before it."""
    peaks = []
    for batch in batches:
        synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        optimizer_step(trainer, model, batch)
        synchronize(device)
        peaks.append(torch.cuda.max_memory_allocated(device) - before)
    return max(peaks) / 2**20


def benchmark(options: argparse.Namespace) -> dict[str, Any]:
    trainers = build_configurations(options)
    device = trainers[PLAIN].args.device
    reference = trainers[LOSS_NAMES[0]]
    if options.pad_to_multiple_of is not None:
        reference.data_collator.pad_to_multiple_of = options.pad_to_multiple_of
    batches: list[Batch] = list(islice(reference.get_train_dataloader(), options.batches))
    batches = [{name: tensor.to(device) for name, tensor in batch.items()} for batch in batches]
    num_labels = reference.model.config.num_labels
    rounds = options.warmup + options.repeats
    models = {name: prepare_for_steps(trainer, rounds + len(batches)) for name, trainer in trainers.items()}

    step_cases = {
        name: [lambda t=trainer, m=models[name], b=batch: optimizer_step(t, m, b) for batch in batches]
        for name, trainer in trainers.items()
    }
    step_ms = round_robin(step_cases, device, options.warmup, options.repeats)
    logits_dtype = torch.bfloat16 if options.bf16 else torch.float32
    loss_cases = {
        name: [loss_only(trainer, batch, num_labels, logits_dtype) for batch in batches]
        for name, trainer in trainers.items()
    }
    loss_ms = round_robin(loss_cases, device, options.warmup, options.repeats)

    tokens = [int(batches[index % len(batches)]["attention_mask"].sum()) for index in range(options.warmup, rounds)]
    padded = [batches[index % len(batches)]["attention_mask"].numel() for index in range(options.warmup, rounds)]
    plain_ms = step_ms[PLAIN]
    results = {}
    for name in trainers:
        results[name] = {
            "step_ms": common.median(step_ms[name]),
            "ratio_of_medians": common.median(step_ms[name]) / common.median(plain_ms),
            "median_of_round_ratios": common.median([ms / plain for ms, plain in zip(step_ms[name], plain_ms)]),
            "loss_forward_backward_ms": common.median(loss_ms[name]),
            "loss_share_of_step": common.median(loss_ms[name]) / common.median(step_ms[name]),
            "tokens_per_second": 1e3 * sum(tokens) / sum(step_ms[name]),
        }
        if device.type == "cuda":
            results[name]["peak_step_memory_mib"] = peak_step_memory_mib(trainers[name], models[name], batches, device)
    return {
        "command": common.command_line(),
        "machine": common.machine_info(options.device),
        "settings": {
            "batches": len(batches),
            "batch_size": reference.args.per_device_train_batch_size,
            "mean_tokens_per_batch": sum(tokens) / len(tokens),
            "mean_padded_tokens_per_batch": sum(padded) / len(padded),
            "warmup_rounds": options.warmup,
            "timed_rounds": options.repeats,
            "bf16": options.bf16,
            "torch_compile": options.torch_compile,
            "pad_to_multiple_of": reference.data_collator.pad_to_multiple_of,
        },
        "results": results,
    }


def report_table(report: dict[str, Any]) -> str:
    settings = report["settings"]
    headers = ["configuration", "ms/step", "ratio", "median round ratio", "loss fwd+bwd ms", "loss share", "tokens/s"]
    with_memory = "peak_step_memory_mib" in next(iter(report["results"].values()))
    if with_memory:
        headers.append("peak step MiB")
    rows = []
    for name, result in report["results"].items():
        row = [
            name if name in PLAIN_CONFIGURATIONS else f"ImbalanceTrainer {name}",
            f"{result['step_ms']:.1f}",
            f"{result['ratio_of_medians']:.3f}x",
            f"{result['median_of_round_ratios']:.3f}x",
            f"{result['loss_forward_backward_ms']:.2f}",
            f"{100 * result['loss_share_of_step']:.1f} %",
            f"{result['tokens_per_second']:.0f}",
        ]
        if with_memory:
            row.append(f"{result['peak_step_memory_mib']:.0f}")
        rows.append(row)
    title = (
        f"{common.machine_line(report['machine'])}; "
        f"{settings['batches']} WNUT-17 batches of {settings['batch_size']} "
        f"({settings['mean_tokens_per_batch']:.0f} tokens, "
        f"{settings['mean_padded_tokens_per_batch']:.0f} with padding), "
        f"bf16={settings['bf16']}, torch_compile={settings['torch_compile']}, "
        f"pad_to_multiple_of={settings['pad_to_multiple_of']}, median of {settings['timed_rounds']} "
        f"round-robin rounds after {settings['warmup_rounds']}"
    )
    return f"{title}\n\n{common.markdown_table(headers, rows)}"


def main() -> None:
    parser = common.benchmark_parser(__doc__, common.RESULTS_DIR / "bench_trainer_step.json")
    parser.add_argument("--batches", type=int, default=20, help="Distinct real batches, cycled over the rounds.")
    parser.add_argument("--repeats", type=int, default=40, help="Timed rounds (the median is reported).")
    parser.add_argument("--warmup", type=int, default=4, help="Untimed rounds first.")
    parser.add_argument(
        "--torch_compile",
        "--torch-compile",
        action="store_true",
        help="The Trainer's --torch_compile (give --warmup >= --batches, so that every batch shape is compiled first).",
    )
    parser.add_argument(
        "--pad_to_multiple_of",
        "--pad-to-multiple-of",
        type=int,
        default=None,
        help="Pad batches to a multiple of N (default: the pipeline's choice, 8 on CUDA and none on CPU).",
    )
    options = common.parse_options(parser)
    report = benchmark(options)
    common.publish(report, report_table(report), options.json)


if __name__ == "__main__":
    main()
