"""Cross-fitted dev micro F1, macro F1 and rare-type recall of each calibration metric, from stored logits.

    python benchmarks/rare_type_calibration.py --results_dir results/runs --settings SETTING_ID [...]
        [--options none micro_f1 macro_f1 micro_f1_keep_recall:0.8 blend:0.5] [--mode per_type]
        [--decoding viterbi] [--types corporation creative-work group product]

For every run of the settings (all their seeds), each option's bias is cross-fitted on the run's
dev logits (`study.rare_types`, `study.crossfit`); prints a markdown table of the means over seeds.
No retraining: only the records and their `<run_id>.logits.npz`.
"""

from __future__ import annotations

import argparse
import sys

from ner_imbalance.calibration.search import CALIBRATION_MODES
from ner_imbalance.constants import DECODING_METHODS, VITERBI
from ner_imbalance.study.rare_types import CalibrationOption, rare_type_rows, rare_type_table
from ner_imbalance.study.records import load_records

DEFAULT_OPTIONS = ("none", "micro_f1", "macro_f1", "micro_f1_keep_recall:0.8", "blend:0.5")
WNUT17_RARE_TYPES = ("corporation", "creative-work", "group", "product")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results_dir", required=True, help="Folder of the study's records and .logits.npz files.")
    parser.add_argument("--settings", nargs="+", required=True, help="Setting ids (the rows), in table order.")
    parser.add_argument("--options", nargs="+", default=DEFAULT_OPTIONS, help="metric or metric:factor, or none.")
    parser.add_argument("--mode", choices=CALIBRATION_MODES, default="per_type")
    parser.add_argument("--decoding", choices=DECODING_METHODS, default=VITERBI)
    parser.add_argument("--types", nargs="+", default=WNUT17_RARE_TYPES, help="Entity types whose recall is shown.")
    options = parser.parse_args(argv)
    try:
        calibrations = [CalibrationOption.parse(text) for text in options.options]
    except ValueError as error:
        parser.error(f"--options: {error}")
    records = load_records(options.results_dir)
    missing = [setting for setting in options.settings if not any(r["setting_id"] == setting for r in records.values())]
    if missing:
        parser.error(f"--settings: no records in {options.results_dir} for {', '.join(missing)}")
    rows = rare_type_rows(
        records,
        options.results_dir,
        options.settings,
        calibrations,
        options.types,
        mode=options.mode,
        decoding=options.decoding,
    )
    print(f"Calibration `{options.mode}` under `{options.decoding}`, cross-fitted on dev (2 folds), mean over seeds.\n")
    print(rare_type_table(rows, options.types))
    return 0


if __name__ == "__main__":
    sys.exit(main())
