"""Forward+backward time of every loss, as a ratio to `torch.nn.functional.cross_entropy`.

    python benchmarks/bench_losses.py [--json PATH] [--repeats N] [--device cpu|cuda|all]

Logits `[65536, 13]` fp32 (a batch of 512 x 128 tokens, 13 BIOES-style tags) with 5 % of the
labels ignored. Cases are timed in round-robin order (one run of each per round, after warm-up
rounds) so that load from other processes hits every case alike; the figure is the median.
Besides the losses of `ner_imbalance.losses`, it times the textbook GHM-C (mmdetection's loop
over bins, one host read per bin) as the baseline of the vectorised one. Prints a markdown
table per device and writes JSON (default `benchmarks/results/bench_losses.json`).
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from _timing import round_robin

from ner_imbalance.losses import LOSS_NAMES, build_loss, loss_class
from ner_imbalance.utils.environment import cpu_model_name, machine_info

REFERENCE = "F.cross_entropy"
TEXTBOOK_GHMC = "ghmc (loop over bins)"
SIGMOID_GHMC = "ghmc (variant sigmoid)"
DEFAULT_JSON = Path(__file__).parent / "results" / "bench_losses.json"


class TextbookGHMC:
    """mmdetection's `GHMC` loop for softmax cross-entropy: a mask, a count and a `.item()` per bin."""

    def __init__(self, bins: int = 10, momentum: float = 0.75) -> None:
        self.edges = torch.arange(bins + 1).float() / bins
        self.edges[-1] += 1e-6
        self.bins = bins
        self.momentum = momentum
        self.moving_average = [0.0] * bins

    def harmonizing_weights(self, gradient_norms: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        weights = torch.zeros_like(gradient_norms)
        num_valid_tokens = max(valid.sum().item(), 1.0)
        num_nonempty_bins = 0
        for index in range(self.bins):
            in_bin = (gradient_norms >= self.edges[index]) & (gradient_norms < self.edges[index + 1]) & valid
            count = in_bin.sum().item()
            if count > 0:
                average = self.momentum * self.moving_average[index] + (1 - self.momentum) * count
                self.moving_average[index] = average
                weights[in_bin] = num_valid_tokens / average
                num_nonempty_bins += 1
        return weights / max(num_nonempty_bins, 1)

    def __call__(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        valid = labels != -100
        log_p_t = torch.log_softmax(logits.float(), -1).gather(-1, labels.clamp_min(0)[:, None]).squeeze(-1)
        weights = self.harmonizing_weights(1 - log_p_t.detach().exp(), valid)
        return (weights * -log_p_t * valid).sum() / valid.sum().clamp_min(1)


def timed_rounds(
    cases: dict[str, Callable[[], object]], device: torch.device, repeats: int, warmup: int
) -> dict[str, float]:
    """Median milliseconds of each zero-argument case, run once per round in turn."""
    times = round_robin({name: [run_case] for name, run_case in cases.items()}, device, warmup, repeats)
    return {name: statistics.median(values) for name, values in times.items()}


def forward_backward(
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], logits: torch.Tensor, labels: torch.Tensor
) -> Callable[[], None]:
    def run_case() -> None:
        logits.grad = None
        loss_fn(logits, labels).backward()

    return run_case


def benchmark(device: torch.device, num_tokens: int, num_classes: int, repeats: int, warmup: int) -> dict:
    """Forward+backward of every loss, and GHM-C's weighting step alone, on one device."""
    generator = torch.Generator().manual_seed(0)
    logits = (2 * torch.randn(num_tokens, num_classes, generator=generator)).to(device).requires_grad_()
    labels = torch.randint(0, num_classes, (num_tokens,), generator=generator)
    labels = labels.masked_fill(torch.rand(num_tokens, generator=generator) < 0.05, -100).to(device)
    textbook = TextbookGHMC()
    textbook.edges = textbook.edges.to(device)
    # The logit-adjusted loss needs a prior: the label frequencies of this batch (every label occurs).
    prior = torch.bincount(labels[labels != -100], minlength=num_classes).float().tolist()
    extra = {name: {"class_prior": prior} for name in LOSS_NAMES if loss_class(name).requires_class_prior}
    loss_functions = {
        REFERENCE: F.cross_entropy,
        **{name: build_loss(name, **extra.get(name, {})).to(device) for name in LOSS_NAMES},
    }
    loss_functions[SIGMOID_GHMC] = build_loss("ghmc", variant="sigmoid").to(device)
    loss_functions[TEXTBOOK_GHMC] = textbook
    losses_ms = timed_rounds(
        {name: forward_backward(loss_fn, logits, labels) for name, loss_fn in loss_functions.items()},
        device,
        repeats,
        warmup,
    )

    gradient_norms = 1 - torch.softmax(logits.detach(), -1).gather(-1, labels.clamp_min(0)[:, None]).squeeze(-1)
    valid = labels != -100
    vectorised = build_loss("ghmc").to(device)
    weighting_ms = timed_rounds(
        {
            "ghmc": lambda: vectorised.harmonizing_weights(gradient_norms, valid),
            TEXTBOOK_GHMC: lambda: textbook.harmonizing_weights(gradient_norms, valid),
        },
        device,
        repeats,
        warmup,
    )
    reference_ms = losses_ms[REFERENCE]
    return {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model_name(),
        "logits_shape": [num_tokens, num_classes],
        "dtype": "float32",
        "repeats": repeats,
        "warmup": warmup,
        "torch_threads": torch.get_num_threads(),
        "forward_backward": {
            name: {"median_ms": median, "ratio_to_cross_entropy": median / reference_ms}
            for name, median in losses_ms.items()
        },
        "ghmc_speedup_over_loop": losses_ms[TEXTBOOK_GHMC] / losses_ms["ghmc"],
        "ghmc_weighting_only_ms": weighting_ms,
        "ghmc_weighting_speedup_over_loop": weighting_ms[TEXTBOOK_GHMC] / weighting_ms["ghmc"],
    }


def markdown_table(report: dict) -> str:
    weighting = report["ghmc_weighting_only_ms"]
    rows = [
        f"Device {report['device']} ({report['device_name'] or 'unknown'}, {report['torch_threads']} thread(s)), "
        f"logits {report['logits_shape']} {report['dtype']}, forward+backward, median of {report['repeats']}",
        "",
        "| loss | ms | ratio to F.cross_entropy |",
        "| --- | ---: | ---: |",
    ]
    rows += [
        f"| {name} | {result['median_ms']:.2f} | {result['ratio_to_cross_entropy']:.2f}x |"
        for name, result in report["forward_backward"].items()
    ]
    rows += [
        "",
        f"Whole loss: ghmc is {report['ghmc_speedup_over_loop']:.2f}x faster than the loop over bins.",
        f"Weighting step alone (weights from g): ghmc {weighting['ghmc']:.3f} ms, "
        f"loop {weighting[TEXTBOOK_GHMC]:.3f} ms, {report['ghmc_weighting_speedup_over_loop']:.1f}x faster.",
    ]
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="Where to write the results.")
    parser.add_argument("--repeats", type=int, default=30, help="Timed rounds (the median is reported).")
    parser.add_argument("--warmup", type=int, default=3, help="Untimed rounds first.")
    parser.add_argument(
        "--device", choices=["cpu", "cuda", "all"], default="all", help="all: CPU, and CUDA when available."
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="CPU threads of torch (default 1: on a shared machine, a descheduled worker thread stalls every "
        "parallel op at its barrier, which measures the load of other processes rather than the losses).",
    )
    parser.add_argument("--tokens", type=int, default=65536)
    parser.add_argument("--classes", type=int, default=13)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    all_devices = ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]
    device_names = {"cpu": ["cpu"], "cuda": ["cuda"], "all": all_devices}
    reports = []
    for device_name in device_names[args.device]:
        report = benchmark(torch.device(device_name), args.tokens, args.classes, args.repeats, args.warmup)
        print(markdown_table(report), end="\n\n")
        reports.append(report)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    machine = machine_info("cuda" if "cuda" in device_names[args.device] else "cpu")
    args.json.write_text(json.dumps({"machine": machine, "reports": reports}, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
