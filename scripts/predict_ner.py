"""Tag a file of new text with a trained model folder: `ner-predict` from the repository.

    python scripts/predict_ner.py --model runs/wnut17_focal --input tweets.txt --output tagged.jsonl
    python scripts/predict_ner.py --model runs/wnut17_focal --input - --output -   # stdin to stdout

The command is `ner_imbalance.cli.predict` (`ner-predict --help` lists its flags and says more); this file
keeps the `python scripts/predict_ner.py` and `accelerate launch scripts/predict_ner.py` spellings working.
"""

from ner_imbalance.cli.predict import run

if __name__ == "__main__":
    run()
