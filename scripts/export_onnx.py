"""Export a trained model folder to ONNX: `ner-export-onnx` from the repository.

    python scripts/export_onnx.py --model runs/wnut17_focal --int8

The command is `ner_imbalance.cli.export_onnx` (`ner-export-onnx --help` lists its flags and says more); this file
keeps the `python scripts/export_onnx.py` and `accelerate launch scripts/export_onnx.py` spellings working.
"""

from ner_imbalance.cli.export_onnx import run

if __name__ == "__main__":
    run()
