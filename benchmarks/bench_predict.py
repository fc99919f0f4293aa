"""Words per second of `predict_ner.py`'s backends (torch fp32, ONNX fp32, ONNX int8) against `transformers.pipeline`.

    python benchmarks/bench_predict.py --model RUN_DIR [--repeats 3] [--batch-size 32]
        [--pipeline-batch-sizes 1,8,32,64] [--max-sentences N] [--threads N] [--json PATH]

`--threads N` sets torch's CPU threads and ONNX Runtime's intra-op threads alike.

Same model folder (one written by `scripts/train_ner.py`; its `model.onnx` and `model.int8.onnx`
are exported first when missing), same process, CPU, WNUT-17 dev (`--data-dir`, default
`../shared/data/wnut17`):
1. each backend end to end through the path `predict_ner.py` takes: `iter_sentences` reads the
   dev file, `tag_chunks` tags it in chunks of `CHUNK_SENTENCES` sentences (windows as in
   evaluation, length-grouped batches of `--batch-size` windows) and `write_conll` writes the
   tags (to memory), so reading, tokenization, the forward passes, decoding and writing are timed;
2. `transformers.pipeline("token-classification", aggregation_strategy="first")` on each sentence's
   words joined by spaces, with its own batching at each of `--pipeline-batch-sizes`; the best is
   the baseline.
All run one untimed round first, then `--repeats` timed rounds, round-robin (`_timing.round_robin`:
the order rotates each round, so load on a shared machine hits every case alike), and the median
is kept; words/second counts the dev file's words. The tags of every backend are also scored
against the dev file's gold tags (entity F1, as conlleval) and compared word by word with the torch
tags. Prints markdown tables and writes JSON (default `benchmarks/results/bench_predict.json`).
"""

from __future__ import annotations

import io
import itertools
import logging
from pathlib import Path

import _common as common
import datasets
import transformers
from _timing import round_robin

from ner_imbalance.data.conll import column_values, read_column_sentences
from ner_imbalance.evaluation import evaluate_tags
from ner_imbalance.inference import (
    CHUNK_SENTENCES,
    Tagger,
    export_onnx,
    iter_sentences,
    onnx_tagger,
    tag_chunks,
    write_conll,
)
from ner_imbalance.inference.onnx_backend import onnx_path

BACKENDS = ("torch fp32", "onnx fp32", "onnx int8")


def tag_file(tagger: Tagger, path: Path, max_sentences: int | None) -> list[list[str]]:
    """The tags of `path` through predict_ner.py's streaming path (the CoNLL output written to memory)."""
    sink, tags = io.StringIO(), []
    for tagged in tag_chunks(tagger, itertools.islice(iter_sentences(path), max_sentences), CHUNK_SENTENCES):
        write_conll(tagged, sink)
        tags += [sentence.tags for sentence in tagged]
    return tags


def main() -> None:
    parser = common.benchmark_parser(__doc__, common.RESULTS_DIR / "bench_predict.json")
    parser.add_argument("--model", type=Path, required=True, help="A model folder written by train_ner.py.")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32, help="Windows per batch of the Tagger.")
    parser.add_argument("--pipeline-batch-sizes", default="1,8,32,64", help="Batch sizes tried for the pipeline.")
    parser.add_argument("--max-sentences", type=int, default=None, help="Only the first N dev sentences.")
    options = common.parse_options(parser)
    if options.device != "cpu" or options.bf16:
        parser.error("the ONNX backends run float32 on the CPU: this benchmark takes neither --device cuda nor --bf16")
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    logging.getLogger().setLevel(logging.ERROR)
    if not onnx_path(options.model, "int8").is_file():
        export_onnx(options.model, int8=True)

    dev = options.data_dir / "dev.conll"
    columns = read_column_sentences(dev)[: options.max_sentences]
    gold = column_values(columns, -1)
    words = sum(len(tags) for tags in gold)
    settings = dict(device="cpu", dtype="float32", batch_size=options.batch_size)
    taggers = {
        "torch fp32": Tagger.from_folder(options.model, **settings),
        "onnx fp32": onnx_tagger(options.model, variant="fp32", threads=options.threads, **settings),
        "onnx int8": onnx_tagger(options.model, variant="int8", threads=options.threads, **settings),
    }
    pipe = transformers.pipeline(
        "token-classification", model=str(options.model), aggregation_strategy="first", device="cpu"
    )
    texts = [" ".join(tokens) for tokens in column_values(columns, 0)]
    cases = {
        name: [lambda tagger=tagger: tag_file(tagger, dev, options.max_sentences)] for name, tagger in taggers.items()
    }
    for batch_size in map(int, options.pipeline_batch_sizes.split(",")):
        cases[f"pipeline {batch_size}"] = [lambda size=batch_size: pipe(texts, batch_size=size)]
    milliseconds = round_robin(cases, "cpu", warmup=1, repeats=options.repeats)
    seconds_of = {name: common.median(times) / 1e3 for name, times in milliseconds.items()}
    pipeline_seconds = {int(name.split()[-1]): seconds_of[name] for name in seconds_of if name.startswith("pipeline")}
    best_batch_size = min(pipeline_seconds, key=pipeline_seconds.get)
    baseline = pipeline_seconds[best_batch_size]

    predictions = {name: tag_file(tagger, dev, options.max_sentences) for name, tagger in taggers.items()}
    reference = [tag for tags in predictions["torch fp32"] for tag in tags]
    backends = {}
    for name in BACKENDS:
        flat = [tag for tags in predictions[name] for tag in tags]
        backends[name] = {
            "seconds": seconds_of[name],
            "words_per_second": words / seconds_of[name],
            "speedup_over_pipeline": baseline / seconds_of[name],
            "entity_f1": 100 * evaluate_tags(gold, predictions[name])["f1"],
            "words_differing_from_torch": sum(tag != other for tag, other in zip(flat, reference)),
        }
    machine = common.machine_info("cpu")
    report = {
        "command": common.command_line(),
        "machine": machine,
        "model": str(options.model),
        "sentences": len(gold),
        "words": words,
        "batch_size": options.batch_size,
        "chunk_sentences": CHUNK_SENTENCES,
        "backends": backends,
        "pipeline": {
            "aggregation_strategy": "first",
            "per_batch_size": {
                str(size): {"seconds": seconds, "words_per_second": words / seconds}
                for size, seconds in pipeline_seconds.items()
            },
            "best_batch_size": best_batch_size,
            "words_per_second": words / baseline,
        },
    }
    rows = [
        [
            name,
            str(options.batch_size),
            f"{result['seconds']:.2f}",
            f"{result['words_per_second']:,.0f}",
            f"{result['speedup_over_pipeline']:.2f}x",
            f"{result['entity_f1']:.2f}",
            str(result["words_differing_from_torch"]),
        ]
        for name, result in backends.items()
    ]
    rows += [
        [
            f"pipeline{' (best)' if size == best_batch_size else ''}",
            str(size),
            f"{seconds:.2f}",
            f"{words / seconds:,.0f}",
            f"{baseline / seconds:.2f}x",
            "",
            "",
        ]
        for size, seconds in pipeline_seconds.items()
    ]
    tables = "\n".join(
        [
            f"WNUT-17 dev, {len(gold)} sentences, {words:,} words, float32, cpu: {common.machine_line(machine)}",
            "",
            common.markdown_table(
                ["backend", "batch size", "seconds", "words/s", "vs best pipeline", "entity F1", "words != torch"],
                rows,
            ),
        ]
    )
    common.publish(report, tables, options.json)


if __name__ == "__main__":
    main()
