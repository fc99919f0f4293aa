"""Words per second of `ner_imbalance.inference.tagger` against `transformers.pipeline("token-classification")`.

    python benchmarks/bench_predict.py --model RUN_DIR [--repeats 3] [--batch-size 32]
        [--pipeline-batch-sizes 1,8,32,64] [--max-sentences N] [--device cpu|cuda] [--bf16]
        [--threads N] [--json PATH]

Same model folder (one written by `scripts/train_ner.py`), same process, WNUT-17 dev
(`--data-dir`, default `../shared/data/wnut17`), its tags ignored:
1. `Tagger.tag` on the dev sentences' words (windows as in evaluation, length-grouped batches of
   `--batch-size` windows), including tokenization and the word-level gathering;
2. `transformers.pipeline("token-classification", aggregation_strategy="first")` on each sentence's
   words joined by spaces, with its own batching at each of `--pipeline-batch-sizes`; the best is
   the baseline.
All run one untimed round first, then `--repeats` timed rounds, round-robin (`_timing.round_robin`:
the order rotates each round, so load on a shared machine hits every case alike), and the median
is kept; words/second counts
the dev file's words. float32 on both sides, or bf16 on both with `--bf16`. Prints a markdown
table and writes JSON (default `benchmarks/results/bench_predict.json`).
"""

from __future__ import annotations

from pathlib import Path

import _common as common
import torch
import transformers
from _timing import round_robin

from ner_imbalance.inference import Tagger, read_sentences


def main() -> None:
    parser = common.benchmark_parser(__doc__, common.RESULTS_DIR / "bench_predict.json")
    parser.add_argument("--model", type=Path, required=True, help="A model folder written by train_ner.py.")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32, help="Windows per batch of the Tagger.")
    parser.add_argument("--pipeline-batch-sizes", default="1,8,32,64", help="Batch sizes tried for the pipeline.")
    parser.add_argument("--max-sentences", type=int, default=None, help="Only the first N dev sentences.")
    options = common.parse_options(parser)
    dtype = torch.bfloat16 if options.bf16 else torch.float32

    sentences = read_sentences(options.data_dir / "dev.conll")[: options.max_sentences]
    words = sum(len(sentence.tokens) for sentence in sentences)
    tagger = Tagger.from_folder(
        options.model,
        device=options.device,
        dtype="bfloat16" if options.bf16 else "float32",
        batch_size=options.batch_size,
    )
    pipe = transformers.pipeline(
        "token-classification",
        model=str(options.model),
        aggregation_strategy="first",
        device=options.device,
        dtype=dtype,
    )
    texts = [" ".join(sentence.tokens) for sentence in sentences]
    cases = {"predict": [lambda: tagger.tag(sentences)]}
    for batch_size in map(int, options.pipeline_batch_sizes.split(",")):
        cases[f"pipeline {batch_size}"] = [lambda size=batch_size: pipe(texts, batch_size=size)]
    milliseconds = round_robin(cases, options.device, warmup=1, repeats=options.repeats)
    seconds_of = {name: common.median(times) / 1e3 for name, times in milliseconds.items()}
    predict_seconds = seconds_of.pop("predict")
    pipeline_seconds = {int(name.split()[-1]): seconds for name, seconds in seconds_of.items()}
    best_batch_size = min(pipeline_seconds, key=pipeline_seconds.get)

    machine = common.machine_info(options.device)
    report = {
        "command": common.command_line(),
        "machine": machine,
        "model": str(options.model),
        "sentences": len(sentences),
        "words": words,
        "dtype": str(dtype).removeprefix("torch."),
        "predict": {
            "batch_size": options.batch_size,
            "seconds": predict_seconds,
            "words_per_second": words / predict_seconds,
        },
        "pipeline": {
            "aggregation_strategy": "first",
            "per_batch_size": {
                str(size): {"seconds": seconds, "words_per_second": words / seconds}
                for size, seconds in pipeline_seconds.items()
            },
            "best_batch_size": best_batch_size,
            "words_per_second": words / pipeline_seconds[best_batch_size],
        },
        "speedup": pipeline_seconds[best_batch_size] / predict_seconds,
    }
    rows = [
        [
            "ner_imbalance.inference.tagger",
            str(options.batch_size),
            f"{predict_seconds:.3f}",
            f"{words / predict_seconds:,.0f}",
        ]
    ]
    rows += [
        [
            f"pipeline{' (best)' if size == best_batch_size else ''}",
            str(size),
            f"{seconds:.3f}",
            f"{words / seconds:,.0f}",
        ]
        for size, seconds in pipeline_seconds.items()
    ]
    tables = "\n".join(
        [
            f"WNUT-17 dev, {len(sentences)} sentences, {words:,} words, {report['dtype']}, {options.device}: "
            f"{common.machine_line(machine)}",
            "",
            common.markdown_table(["tagger", "batch size", "seconds", "words/s"], rows),
            "",
            f"predict / best pipeline: {report['speedup']:.2f}x",
        ]
    )
    common.publish(report, tables, options.json)


if __name__ == "__main__":
    main()
