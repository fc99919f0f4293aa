"""Words per second of `predict_ner.py`'s backends (torch, ONNX fp32 and int8 variants) and `transformers.pipeline`.

    python benchmarks/bench_predict.py --model RUN_DIR [--repeats 3] [--batch_size 32]
        [--pipeline_batch_sizes 1,8,32,64] [--max_sentences N] [--threads N] [--json PATH]
        [--onnx_variants fp32,int8,int8-matmul,...]

`--threads N` sets torch's CPU threads and ONNX Runtime's intra-op threads alike.

Same model folder (one written by `scripts/train_ner.py`; the graphs of `--onnx_variants` are
exported first when missing, a calibrated int8 variant on the windows of the first 300 sentences of
`train.conll` in `--data_dir`), same process, CPU, WNUT-17 dev (`--data_dir`, default
`../shared/data/wnut17`):
1. each backend end to end through the path `predict_ner.py` takes: `iter_sentences` reads the
   dev file, `tag_chunks` tags it in chunks of `CHUNK_SENTENCES` sentences (windows as in
   evaluation, length-grouped batches of `--batch_size` windows) and `write_conll` writes the
   tags (to memory), so reading, tokenization, the forward passes, decoding and writing are timed;
2. `transformers.pipeline("token-classification", aggregation_strategy="first")` on each sentence's
   words joined by spaces, with its own batching at each of `--pipeline_batch_sizes`; the best is
   the baseline.
All run one untimed round first, then `--repeats` timed rounds, round-robin (`_timing.round_robin`:
the order rotates each round, so load on a shared machine hits every case alike), and the median
is kept; words/second counts the dev file's words. The tags of every backend are also scored
against the dev file's gold tags (entity F1, as conlleval, under the folder's decoding), against
ONNX fp32's F1, and compared word by word with the torch tags; the load average before and after is
recorded. Prints markdown tables and writes JSON (default `benchmarks/results/bench_predict.json`).
"""

from __future__ import annotations

import io
import itertools
import logging
import os
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
from ner_imbalance.inference.onnx_backend import (
    CALIBRATION_SENTENCES,
    DEFAULT_INT8,
    FP32,
    ONNX_VARIANTS,
    onnx_path,
    quantize_int8,
)


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
    parser.add_argument("--batch_size", "--batch-size", type=int, default=32, help="Windows per batch of the Tagger.")
    parser.add_argument(
        "--pipeline_batch_sizes",
        "--pipeline-batch-sizes",
        default="1,8,32,64",
        help="Batch sizes tried for the pipeline.",
    )
    parser.add_argument(
        "--max_sentences", "--max-sentences", type=int, default=None, help="Only the first N dev sentences."
    )
    parser.add_argument(
        "--onnx_variants",
        "--onnx-variants",
        default=f"{FP32},{DEFAULT_INT8}",
        help=f"Comma-separated ONNX variants to time (fp32 always): {', '.join(ONNX_VARIANTS)}.",
    )
    options = common.parse_options(parser)
    if options.device != "cpu" or options.bf16:
        parser.error("the ONNX backends run float32 on the CPU: this benchmark takes neither --device cuda nor --bf16")
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    logging.getLogger().setLevel(logging.ERROR)
    variants = list(dict.fromkeys([FP32, *options.onnx_variants.split(",")]))
    unknown = [variant for variant in variants if variant not in ONNX_VARIANTS]
    if unknown:
        parser.error(f"--onnx_variants: {', '.join(unknown)} not among {', '.join(ONNX_VARIANTS)}")
    load_before = os.getloadavg()
    if not onnx_path(options.model, FP32).is_file():
        export_onnx(options.model)
    calibration = column_values(read_column_sentences(options.data_dir / "train.conll")[:CALIBRATION_SENTENCES], 0)
    for variant in variants[1:]:
        if not onnx_path(options.model, variant).is_file():
            quantize_int8(options.model, variant, calibration=calibration)

    dev = options.data_dir / "dev.conll"
    columns = read_column_sentences(dev)[: options.max_sentences]
    gold = column_values(columns, -1)
    words = sum(len(tags) for tags in gold)
    settings = dict(device="cpu", dtype="float32", batch_size=options.batch_size)
    taggers = {
        "torch fp32": Tagger.from_folder(options.model, **settings),
        **{
            f"onnx {variant}": onnx_tagger(options.model, variant=variant, threads=options.threads, **settings)
            for variant in variants
        },
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
    f1_of = {name: 100 * evaluate_tags(gold, tags)["f1"] for name, tags in predictions.items()}
    for name in taggers:
        flat = [tag for tags in predictions[name] for tag in tags]
        backends[name] = {
            "seconds": seconds_of[name],
            "words_per_second": words / seconds_of[name],
            "speedup_over_pipeline": baseline / seconds_of[name],
            "entity_f1": f1_of[name],
            "entity_f1_minus_onnx_fp32": f1_of[name] - f1_of[f"onnx {FP32}"],
            "words_differing_from_torch": sum(tag != other for tag, other in zip(flat, reference)),
        }
    machine = common.machine_info("cpu")
    report = {
        "command": common.command_line(),
        "machine": machine,
        "load_average_1_5_15_min": {"before": load_before, "after": os.getloadavg()},
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
            f"{result['entity_f1_minus_onnx_fp32']:+.2f}",
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
            "",
        ]
        for size, seconds in pipeline_seconds.items()
    ]
    tables = "\n".join(
        [
            f"WNUT-17 dev, {len(gold)} sentences, {words:,} words, float32, cpu: {common.machine_line(machine)}",
            "",
            common.markdown_table(
                ["backend", "batch size", "seconds", "words/s", "vs best pipeline", "F1", "F1 - onnx fp32", "!= torch"],
                rows,
            ),
        ]
    )
    common.publish(report, tables, options.json)


if __name__ == "__main__":
    main()
