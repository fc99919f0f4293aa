"""Time and peak memory of `predict_ner.py` against the size of its input: linear time, flat memory.

    python benchmarks/bench_predict_memory.py --model RUN_DIR [--words 10000,100000,1000000]
        [--backends torch,onnx-int8] [--json PATH]

Input files of about `--words` words are made by repeating WNUT-17 dev (`--data_dir`, default
`../shared/data/wnut17`) sentence by sentence; each is tagged by `scripts/predict_ner.py` in its
own process (CoNLL in, CoNLL out, default chunk size, no progress bar), one process at a time,
for each of `--backends` (`torch`, `onnx-fp32`, `onnx-int8`). Measured: the wall time of the
process and its peak resident memory (`ru_maxrss` from `os.wait4`, the process itself, not the
benchmark). Prints a markdown table and writes JSON (default
`benchmarks/results/bench_predict_memory.json`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common as common

from ner_imbalance.data.conll import column_values, read_column_sentences

PREDICT = Path(__file__).resolve().parents[1] / "scripts" / "predict_ner.py"
BACKEND_FLAGS = {
    "torch": [],
    "onnx-fp32": ["--backend", "onnx", "--onnx_variant", "fp32"],
    "onnx-int8": ["--backend", "onnx", "--onnx_variant", "int8"],
}


def repeated_input(dev: Path, words: int, path: Path) -> int:
    """Write dev's sentences over and over into `path` (tokens only) until `words` words; returns the count."""
    sentences = column_values(read_column_sentences(dev), 0)
    written = 0
    with open(path, "w", encoding="utf-8") as handle:
        while written < words:
            for tokens in sentences:
                handle.write("\n".join(tokens) + "\n\n")
                written += len(tokens)
                if written >= words:
                    break
    return written


def run_predict(model: Path, source: Path, output: Path, flags: list[str]) -> tuple[float, float]:
    """Seconds and peak resident MiB of one `predict_ner.py` process."""
    command = [sys.executable, str(PREDICT), "--model", str(model), "--input", str(source), "--output", str(output)]
    with tempfile.TemporaryFile() as errors:
        start = time.perf_counter()
        process = subprocess.Popen([*command, "--no_progress", *flags], stderr=errors)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            errors.seek(0)
            raise RuntimeError(f"predict_ner.py failed: {errors.read().decode(errors='replace')}")
    return seconds, usage.ru_maxrss / 1024  # ru_maxrss is in KiB on Linux


def main() -> None:
    parser = common.benchmark_parser(__doc__, common.RESULTS_DIR / "bench_predict_memory.json")
    parser.add_argument("--model", type=Path, required=True, help="A model folder written by train_ner.py.")
    parser.add_argument("--words", default="10000,100000,1000000", help="Input sizes in words.")
    parser.add_argument("--backends", default="torch,onnx-int8", help=f"Of {', '.join(BACKEND_FLAGS)}.")
    options = common.parse_options(parser)
    backends = options.backends.split(",")
    unknown = [name for name in backends if name not in BACKEND_FLAGS]
    if unknown:
        parser.error(f"unknown backends {unknown}: choose from {', '.join(BACKEND_FLAGS)}")
    results = []
    with tempfile.TemporaryDirectory(prefix="bench_predict_memory_") as folder:
        for size in map(int, options.words.split(",")):
            source = Path(folder) / f"input_{size}.conll"
            words = repeated_input(options.data_dir / "dev.conll", size, source)
            for backend in backends:
                output = Path(folder) / "tags.conll"
                seconds, peak = run_predict(options.model, source, output, BACKEND_FLAGS[backend])
                results.append({"backend": backend, "words": words, "seconds": seconds, "peak_rss_mib": peak})
                print(f"{backend}: {words:,} words in {seconds:.1f} s, peak RSS {peak:,.0f} MiB", flush=True)
                output.unlink()
    rows = [
        [
            result["backend"],
            f"{result['words']:,}",
            f"{result['seconds']:.1f}",
            f"{result['words'] / result['seconds']:,.0f}",
            f"{result['peak_rss_mib']:,.0f}",
        ]
        for result in results
    ]
    machine = common.machine_info("cpu")
    report = {"command": common.command_line(), "machine": machine, "model": str(options.model), "runs": results}
    tables = "\n".join(
        [
            f"predict_ner.py on WNUT-17 dev repeated, CoNLL in and out, one process per run: "
            f"{common.machine_line(machine)}",
            "",
            common.markdown_table(["backend", "words", "seconds", "words/s", "peak RSS (MiB)"], rows),
        ]
    )
    common.publish(report, tables, options.json)


if __name__ == "__main__":
    main()
