"""The loss study, an application on top of the library: a grid of fine-tuning runs, one JSON record per run.

A study config (`configs/study/*.yaml`) names datasets, entity keep ratios, loss settings and
seeds. The modules, one job each:

- `grid`: read a config and expand it to `RunSpec`s (resolving `from_sweep` entries).
- `records`: the JSON record of a finished run, with its git, version and machine metadata.
- `runner`: run the unfinished specs through `ner_imbalance.training.run.run_experiment` (the code
  path of `scripts/train_ner.py`), resume, and list the plan (`--dry_run`).
- `summary`: records -> mean ± std over seeds, one section per config.
- `report`: the markdown and JSON report; `plots`: its PNG figures.
- `convergence`, `curves`: paired bootstrap and the convergence sections' tables and curves;
  `crossfit`: the 2-fold cross-fitted calibration of the sections whose config asks for it;
  `decoding`: argmax against Viterbi; `dev_runs`: each run's stored dev outputs read and derived once.

The library never imports this package; `scripts/compare_losses.py` and
`scripts/report_results.py` are its command lines.
"""
