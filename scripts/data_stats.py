"""Corpus statistics of annotated NER files: `ner-data-stats` from the repository.

    python scripts/data_stats.py --demo

The command is `ner_imbalance.cli.data_stats` (`ner-data-stats --help` lists its flags and says more); this file
keeps the `python scripts/data_stats.py` and `accelerate launch scripts/data_stats.py` spellings working.
"""

from ner_imbalance.cli.data_stats import run

if __name__ == "__main__":
    run()
