"""Fine-tune a token-classification model with an imbalance-aware loss: `ner-train` from the repository.

    accelerate launch scripts/train_ner.py --loss focal
    python scripts/train_ner.py configs/wnut17_focal.yaml
    python scripts/train_ner.py --config configs/wnut17_focal.yaml --num_train_epochs 1

The command is `ner_imbalance.cli.train` (`ner-train --help` lists its flags and says more); this file
keeps the `python scripts/train_ner.py` and `accelerate launch scripts/train_ner.py` spellings working.
"""

from ner_imbalance.cli.train import run

if __name__ == "__main__":
    run()
