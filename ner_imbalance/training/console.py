"""What a run prints on stdout: a short line per log, and a closing summary of its scores.

The Trainer prints every log dict whole (`ProgressCallback` through tqdm, `PrinterCallback` with
`--disable_tqdm`): with the loss shares, gold probabilities and loss statistics of
`ImbalanceTrainer.log` and the per-type scores of an evaluation that is some 40 keys a line.
`ConsoleProgressCallback` and `ConsolePrinterCallback` replace those two and print only
`PRINTED_LOG_KEYS`; the logs themselves are not changed, so the log history
(`trainer_state.json`), TensorBoard and every other callback still get every key.

`run_summary` is the block a run ends on: dev and test micro and macro F1, a per-type table of
precision, recall and F1, the decoding and calibration used and the model's folder. The full
metrics are in the run's `<split>_results.json`.
"""

from __future__ import annotations

from typing import Any

from transformers import (
    PrinterCallback,
    ProgressCallback,
    TrainerCallback,
    TrainerControl,
    TrainerState,
    TrainingArguments,
)

from ner_imbalance.calibration import CalibrationResult
from ner_imbalance.constants import ENTITY_METRICS, OVERALL_METRICS
from ner_imbalance.tags import entity_types

PRINTED_LOG_KEYS = (
    "loss",
    "grad_norm",
    "learning_rate",
    "eval_loss",
    *(f"eval_{name}" for name in OVERALL_METRICS),
    "train_loss",
    "train_runtime",
    "epoch",
)
"""The keys of a log that are printed, in this order: a training step's loss, learning rate and
gradient norm, an evaluation's loss and overall scores, the end of training's mean loss and time."""

SUMMARY_TITLE = "Run summary"
SPLIT_NAMES = {"eval": "dev", "test": "test"}
"""Metric prefix -> the split's name in the summary."""
TYPE_COLUMNS = ("P", "R", "F1", "n")
"""The summary's columns per type and split: precision, recall, F1 (in %) and the number of gold entities."""


def printed_logs(logs: dict[str, Any]) -> dict[str, Any]:
    """The part of `logs` printed on the console: its `PRINTED_LOG_KEYS`, in that order."""
    return {key: logs[key] for key in PRINTED_LOG_KEYS if key in logs}


class _PrintsShortLogs(TrainerCallback):
    """Gives the printing callback it is mixed into `printed_logs(logs)` only, and nothing when that is empty."""

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        shown = printed_logs(logs or {})
        if shown:
            super().on_log(args, state, control, logs=shown, **kwargs)


class ConsoleProgressCallback(_PrintsShortLogs, ProgressCallback):
    """`ProgressCallback` (the progress bars) whose log lines show `PRINTED_LOG_KEYS` only."""


class ConsolePrinterCallback(_PrintsShortLogs, PrinterCallback):
    """`PrinterCallback` (`--disable_tqdm`) whose log lines show `PRINTED_LOG_KEYS` only."""


CONSOLE_CALLBACKS = {ProgressCallback: ConsoleProgressCallback, PrinterCallback: ConsolePrinterCallback}
"""The Trainer's printing callback -> the one that replaces it."""


def run_summary(
    results: dict[str, dict[str, Any]],
    label_list: list[str],
    *,
    decoding: str,
    calibration: CalibrationResult | None,
    output_dir: str,
) -> str:
    """The closing block of a run: scores in % of the evaluated splits of `results` (`"eval"` for
    dev, `"test"`; keys `<prefix>_f1`, `<prefix>_<type>_precision`, ...), then the decoding, the
    calibration (`None`: none) and the model folder."""
    splits = [prefix for prefix in SPLIT_NAMES if prefix in results]
    lines = [f"===== {SUMMARY_TITLE} ====="]
    if splits:
        lines.append(f"{'':<14}" + "".join(f"{SPLIT_NAMES[prefix]:>9}" for prefix in splits))
        for name, key in (("micro F1", "f1"), ("macro F1", "macro_f1")):
            scores = (100 * results[prefix][f"{prefix}_{key}"] for prefix in splits)
            lines.append(f"{name:<14}" + "".join(f"{score:>9.2f}" for score in scores))
        types = entity_types(label_list)
        width = max(len("type"), *(len(entity_type) for entity_type in types))
        columns = [f"{SPLIT_NAMES[prefix]} {column}" for prefix in splits for column in TYPE_COLUMNS]
        lines.append(f"{'type':<{width}}" + "".join(f"{column:>10}" for column in columns))
        for entity_type in types:
            row = "".join(_type_scores(results[prefix], prefix, entity_type) for prefix in splits)
            lines.append(f"{entity_type:<{width}}{row}")
    else:
        lines.append("no split was evaluated (no validation or test split, or --do_eval/--do_predict false)")
    lines.append(f"decoding: {decoding}")
    lines.append(f"calibration: {_describe_calibration(calibration)}")
    lines.append(f"model: {output_dir}")
    return "\n".join(lines)


def _type_scores(metrics: dict[str, Any], prefix: str, entity_type: str) -> str:
    """Precision, recall and F1 in % and the number of gold entities of one type, as 10-wide columns."""
    scores = [100 * metrics[f"{prefix}_{entity_type}_{name}"] for name in ENTITY_METRICS]
    support = int(metrics[f"{prefix}_{entity_type}_support"])
    return "".join(f"{score:>10.2f}" for score in scores) + f"{support:>10}"


def _describe_calibration(calibration: CalibrationResult | None) -> str:
    if calibration is None:
        return "none"
    biases = ", ".join(f"{label} {value:+.2f}" for label, value in calibration.nonzero_biases().items()) or "none"
    return (
        f"{calibration.mode} on dev ({calibration.metric} {100 * calibration.score_before:.2f} -> "
        f"{100 * calibration.score_after:.2f}; logit biases {biases})"
    )
