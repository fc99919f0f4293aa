"""Entity-level scores of predicted tags in CoNLL column files: `ner-evaluate` from the repository.

    python scripts/evaluate_ner.py --pred predictions.conll
    python scripts/evaluate_ner.py --gold dev.conll --pred pred.conll --errors

The command is `ner_imbalance.cli.evaluate` (`ner-evaluate --help` lists its flags and says more); this file
keeps the `python scripts/evaluate_ner.py` and `accelerate launch scripts/evaluate_ner.py` spellings working.
"""

from ner_imbalance.cli.evaluate import run

if __name__ == "__main__":
    run()
