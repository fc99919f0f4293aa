"""Export a model folder written by train_ner.py to ONNX, for `predict_ner.py --backend onnx`.

    python scripts/export_onnx.py --model runs/wnut17_focal            # writes runs/wnut17_focal/model.onnx
    python scripts/export_onnx.py --model runs/wnut17_focal --int8     # and model.int8.onnx

The graph is `torch.onnx.export` of the folder's model (dynamic batch and sequence axes; the
calibration bias of training is in its classifier bias); `--int8` adds ONNX Runtime's dynamic
int8 quantisation of it. Each file is checked against the torch model on a few windows (the
largest difference of the word probabilities is printed) and renamed into place only when
complete. Needs `pip install 'ner_imbalance[onnx]'`. A bad flag or folder is one line and exit 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings

import datasets
import numpy as np
import transformers

from ner_imbalance.errors import OneLineArgumentParser
from ner_imbalance.inference import Tagger
from ner_imbalance.inference.onnx_backend import export_onnx, onnx_tagger
from ner_imbalance.utils.extras import MissingExtraError

CHECK_SENTENCES = [
    ["Empire", "State", "Building", "in", "New", "York", "City", "!"],
    ["@user", "watching", "the", "new", "Star", "Wars", "with", "Anna", "tonight"],
    ["a"],
]


def main(argv: list[str] | None = None) -> int:
    parser = OneLineArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    parser.add_argument("--model", required=True, help="A model folder written by train_ner.py.")
    parser.add_argument("--int8", action="store_true", help="Also write model.int8.onnx (dynamic int8 quantisation).")
    args = parser.parse_args(argv)
    transformers.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    for name in ("", "torch.onnx"):  # onnxruntime.quantization's advice; the exporter's notes on torchvision
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            paths = export_onnx(args.model, int8=args.int8)
        reference = Tagger.from_folder(args.model, device="cpu", dtype="float32").word_probabilities(CHECK_SENTENCES)
        for variant, path in zip(("fp32", "int8"), paths):
            probabilities = onnx_tagger(args.model, variant=variant).word_probabilities(CHECK_SENTENCES)
            difference = float(np.abs(probabilities - reference).max())
            print(f"wrote {path} (largest difference of a word probability from torch: {difference:.2e})")
    except (FileNotFoundError, ValueError, OSError, MissingExtraError) as error:
        print(f"export_onnx.py: error: {str(error).splitlines()[0]}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
