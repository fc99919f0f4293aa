"""How `build_trainer` gives the loss what it needs from the corpus and the training arguments:
class priors, effective-number class weights, and label smoothing applied once."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from tiny_models import tiny_corpus_flags

from ner_imbalance.config.arguments import parse_arguments
from ner_imbalance.data.stats import compute_class_weights, label_prior
from ner_imbalance.losses import CrossEntropyLoss, LogitAdjustedLoss
from ner_imbalance.training.run import build_trainer


def trainer_for(tiny_model_dir, tmp_path, *flags: str):
    arguments = parse_arguments([*tiny_corpus_flags(tiny_model_dir, tmp_path), "--use_cpu", "true", *flags])
    return build_trainer(*arguments)


def test_logit_adjusted_gets_the_prior_of_the_training_split(tiny_model_dir, tmp_path):
    trainer, corpus = trainer_for(tiny_model_dir, tmp_path, "--loss", "logit_adjusted", "--tau", "0.5")
    assert isinstance(trainer.loss_fn, LogitAdjustedLoss)
    prior = torch.tensor(label_prior(corpus.words["train"], corpus.label_list))
    torch.testing.assert_close(trainer.loss_fn.log_prior_shift, 0.5 * prior.log())


def test_effective_number_class_weights_with_their_beta(tiny_model_dir, tmp_path):
    trainer, corpus = trainer_for(
        tiny_model_dir, tmp_path, "--loss", "dice", "--class_weights", "effective_number", "--class_weight_beta", "0.9"
    )
    expected = compute_class_weights(corpus.words["train"], corpus.label_list, "effective_number", beta=0.9)
    torch.testing.assert_close(trainer.loss_fn.class_weights, torch.tensor(expected))


@pytest.mark.parametrize("loss", ["ce", "logit_adjusted"])
def test_label_smoothing_factor_reaches_the_loss_and_is_applied_once(tiny_model_dir, tmp_path, loss):
    trainer, _ = trainer_for(tiny_model_dir, tmp_path, "--loss", loss, "--label_smoothing_factor", "0.1")
    assert trainer.loss_fn.label_smoothing == 0.1
    # The base Trainer builds its own LabelSmoother from the flag; ImbalanceTrainer.compute_loss
    # replaces the base one that would apply it, so the loss is our smoothed loss, not smoothed twice.
    assert trainer.label_smoother is not None
    trainer.model.eval()
    batch = next(iter(trainer.get_train_dataloader()))
    loss_value = trainer.compute_loss(trainer.model, dict(batch))
    with torch.no_grad():
        logits = trainer.model(**{key: value for key, value in batch.items() if key != "labels"}).logits
    expected = trainer.loss_fn(logits, batch["labels"])
    torch.testing.assert_close(loss_value.detach(), expected)
    if loss == "ce":
        flat_logits, flat_labels = logits.reshape(-1, logits.shape[-1]), batch["labels"].reshape(-1)
        torch.testing.assert_close(expected, F.cross_entropy(flat_logits, flat_labels, label_smoothing=0.1))
        assert isinstance(trainer.loss_fn, CrossEntropyLoss)


def test_without_the_flag_there_is_no_smoothing(tiny_model_dir, tmp_path):
    trainer, _ = trainer_for(tiny_model_dir, tmp_path, "--loss", "ce")
    assert trainer.loss_fn.label_smoothing == 0.0
