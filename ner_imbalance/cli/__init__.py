"""The installed commands, one module each; every one is `main(argv=None) -> int` plus `run()`, its entry point.

- `train`        `ner-train`: fine-tune with an imbalance-aware loss (`training.prepare_run` / `execute_run`)
- `predict`      `ner-predict`: tag a file or standard input with a trained folder (`inference.tag_file`)
- `evaluate`     `ner-evaluate`: entity-level scores of prediction files (`evaluation.evaluate_files`)
- `export_onnx`  `ner-export-onnx`: a trained folder to ONNX, fp32 and int8 (`inference.export_onnx`)
- `tune`         `ner-tune`: optuna search of the learning rate and the loss's hyperparameters
- `data_stats`   `ner-data-stats`: corpus statistics of annotated files

`python -m ner_imbalance.cli.<module>` and `accelerate launch -m ner_imbalance.cli.train` run them too, and
`scripts/*.py` are thin wrappers of them. A module here parses flags, calls the package and prints; the
work is done in the subpackages. Every command has `--version`; bad input is one line on stderr naming
the flag or file (`<command>: error: ...`) and exit status 2, before any work (`common`).
"""
