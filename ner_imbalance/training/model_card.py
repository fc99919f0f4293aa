"""The model card (`README.md`) a run writes next to its model: base model, data, loss, decoding, scores.

Everything it says is read from the run's `PreparedRun` (the model folder or name the run
loaded, the sources its corpus was read from, its loss and decoding), never rebuilt here.
"""

from __future__ import annotations

import os

from ner_imbalance.calibration import CalibrationResult
from ner_imbalance.constants import OUTSIDE, PIPELINE_TASK, VITERBI
from ner_imbalance.training.prepared_run import PreparedRun
from ner_imbalance.utils.atomic import write_text_atomic


def write_model_card(
    output_dir: str,
    prepared: PreparedRun,
    *,
    results: dict[str, dict[str, float]],
    calibration: CalibrationResult | None = None,
) -> None:
    """README.md in `output_dir`: what was trained on what with which loss (or, for an
    evaluation-only run, what was evaluated), how tags are decoded, then the `results` table
    (`{prefix: metrics}`) and the calibration, if any."""
    loss_args, sources = prepared.loss_args, prepared.word_corpus.sources
    label_list = prepared.word_corpus.label_list
    hyperparameters = ", ".join(
        f"{name}={value}" for name, value in loss_args.loss_kwargs(label_list.index(OUTSIDE)).items()
    )
    loss = f"`{loss_args.loss}` ({hyperparameters or '-'}), class weights: {loss_args.class_weights}"
    trained = prepared.training_args.do_train
    if trained:
        lines = [
            "# Token-classification model trained with ner_imbalance",
            "",
            f"- Base model: {prepared.model_path}",
            f"- Training data: {sources['train']}",
            f"- Loss: {loss}",
        ]
    else:
        evaluated = "; ".join(source for split, source in sources.items() if split != "train")
        lines = [
            "# Evaluation of a token-classification model with ner_imbalance (no training)",
            "",
            f"- Model evaluated: {prepared.model_path}, as loaded; this run trained nothing"
            + (
                "; the model saved here is it with the calibration bias folded in"
                if calibration
                else " and saved no model here"
            ),
            f"- Evaluation data: {evaluated or '-'}; label list from the training split {sources['train']}",
            f"- Loss of the reported evaluation loss: {loss}",
        ]
    lines.append(f"- Decoding: `{prepared.decoding}` ({prepared.word_corpus.scheme} tags)")
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
        lines.append(usage_note(prepared.decoding))
    write_text_atomic(os.path.join(output_dir, "README.md"), "\n".join(lines) + "\n")


def usage_note(decoding: str) -> str:
    """How to get this model's tags: `predict_ner.py`, `ner_pipeline` (a `transformers` pipeline) and the
    `Tagger`, all with the decoding it was evaluated with; and what the plain token-classification pipeline gives."""
    ours = (
        "Tag a file with `python scripts/predict_ner.py --model <this folder> --input FILE --output FILE`. In Python, "
        "`ner_imbalance.ner_pipeline(<this folder>)` is a `transformers` pipeline that returns the entities of texts "
        "(`entity_group`, `score`, `word`, `start`, `end`); after `import ner_imbalance.inference`, "
        f'`transformers.pipeline("{PIPELINE_TASK}", model=<this folder>)` builds the same. '
        "`Tagger.from_folder(<this folder>)` (`from ner_imbalance import Tagger`) tags lists of words (`.tag`) or "
        f"texts (`.tag_text`). All decode with `{decoding}` on the windows of the evaluation above."
    )
    plain = '`transformers.pipeline("token-classification", model=<this folder>, aggregation_strategy="first")`'
    if decoding != VITERBI:
        return f'{ours} {plain} loads it too (trained on the first sub-token of each word, "first" gives whole words).'
    return f"{ours} {plain} loads it too, but decodes each word by argmax: its tags can differ from those above."
