"""Export a model folder written by ner-train to ONNX, for `ner-predict --backend onnx`.

    ner-export-onnx --model runs/wnut17_focal            # writes runs/wnut17_focal/model.onnx
    ner-export-onnx --model runs/wnut17_focal --int8     # and model.int8-fp32-classifier.onnx

The graph is `torch.onnx.export` of the folder's model (dynamic batch and sequence axes; the
calibration bias of training is in its classifier bias); `--int8` adds ONNX Runtime's dynamic
int8 quantisation of it. Each file is checked against the torch model on a few windows (the
largest difference of the word probabilities is printed) and renamed into place only when
complete. Needs `pip install 'ner_imbalance[onnx]'`. A bad flag or folder is one line and exit 2.
"""

from __future__ import annotations

import logging
import sys
import warnings
from typing import NoReturn

import transformers

from ner_imbalance.cli.common import command_parser, refuse
from ner_imbalance.errors import UsageError
from ner_imbalance.inference.onnx_backend import DEFAULT_INT8, FP32, export_onnx, largest_difference_from_torch
from ner_imbalance.utils.extras import MissingExtraError
from ner_imbalance.utils.logging_state import logging_restored, progress_bars_off

PROGRAM = "ner-export-onnx"


def export_and_check(model: str, *, int8: bool) -> None:
    """Export the folder's graphs, then print each one's largest word-probability difference from torch."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        paths = export_onnx(model, int8=int8)
    variants = (FP32, DEFAULT_INT8)[: len(paths)]
    differences = largest_difference_from_torch(model, variants)
    for variant, path in zip(variants, paths):
        print(f"wrote {path} (largest difference of a word probability from torch: {differences[variant]:.2e})")


def main(argv: list[str] | None = None) -> int:
    """Export, check each graph against torch and print the difference; the exit status (2: bad input).

    The libraries are quieted for this run only: `main` also runs in-process (tests), where a root
    logger left at ERROR would drop every later warning of the package.
    """
    parser = command_parser(PROGRAM, __doc__, epilog=True)
    parser.add_argument("--model", required=True, help="A model folder written by ner-train.")
    parser.add_argument(
        "--int8", action="store_true", help=f"Also write model.{DEFAULT_INT8}.onnx (int8, the classifier fp32)."
    )
    try:
        args = parser.parse_args(argv)
    except UsageError as error:
        return refuse(PROGRAM, str(error))
    with logging_restored(), progress_bars_off():
        transformers.logging.set_verbosity_error()
        for name in ("", "torch.onnx"):  # onnxruntime.quantization's advice; the exporter's notes on torchvision
            logging.getLogger(name).setLevel(logging.ERROR)
        try:
            export_and_check(args.model, int8=args.int8)
        except (FileNotFoundError, ValueError, OSError, MissingExtraError) as error:
            return refuse(PROGRAM, str(error).splitlines()[0])
    return 0


def run() -> NoReturn:
    """The `ner-export-onnx` command."""
    sys.exit(main())


if __name__ == "__main__":
    run()
