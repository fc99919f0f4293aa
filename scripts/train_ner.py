"""Fine-tune a token-classification model with an imbalance-aware loss.

    accelerate launch scripts/train_ner.py --loss focal
    python scripts/train_ner.py configs/wnut17_focal.yaml
    python scripts/train_ner.py --config configs/wnut17_focal.yaml --num_train_epochs 1

With no data or model flags it trains the packaged MiniLM on the packaged demo corpus, offline.
Every `transformers.TrainingArguments` flag works; `--help` lists them all.
"""

from __future__ import annotations

import logging
import sys

import transformers

from ner_imbalance.arguments import parse_arguments
from ner_imbalance.pipeline import run_experiment


def main(argv: list[str] | None = None) -> int:
    try:
        model_args, data_args, loss_args, training_args = parse_arguments(argv)
    except (ValueError, FileNotFoundError) as error:
        print(f"train_ner.py: error: {error}", file=sys.stderr)
        return 2
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    transformers.utils.logging.set_verbosity_warning()
    run_experiment(
        model_args, data_args, loss_args, training_args, resume_from_checkpoint=training_args.resume_from_checkpoint
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
