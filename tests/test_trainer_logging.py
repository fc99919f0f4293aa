"""ImbalanceTrainer logs the loss module's `statistics()` at logging steps only."""

from __future__ import annotations

import torch
from tiny_models import random_token_dataset, tiny_training_arguments
from transformers import DataCollatorForTokenClassification

from ner_imbalance.losses import build_loss
from ner_imbalance.training.trainer import LOSS_STATISTICS_PREFIX, ImbalanceTrainer

NUM_LABELS = 5
BATCH_SIZE = 4


class LossWithStatistics(torch.nn.Module):
    """Cross-entropy that keeps the last batch's valid-token count on the device and offers it,
    with a vector and a plain float, through `statistics()`; counts how often it is asked."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = build_loss("ce")
        self.register_buffer("last_valid_tokens", torch.zeros(()))
        self.statistics_calls = 0

    def forward(self, logits, labels, num_items_in_batch=None):
        self.last_valid_tokens.copy_((labels != -100).sum())
        return self.inner(logits, labels, num_items_in_batch=num_items_in_batch)

    def statistics(self) -> dict[str, torch.Tensor | float]:
        self.statistics_calls += 1
        return {"valid_tokens": self.last_valid_tokens, "bin_share": torch.tensor([0.25, 0.75]), "momentum": 0.5}


def trainer_with(tmp_path, tiny_tokenizer, tiny_bert_factory, loss_fn, dataset) -> ImbalanceTrainer:
    args = tiny_training_arguments(
        tmp_path,
        per_device_train_batch_size=BATCH_SIZE,
        per_device_eval_batch_size=BATCH_SIZE,
        max_steps=4,
        logging_steps=2,
        learning_rate=1e-3,
    )
    return ImbalanceTrainer(
        model=tiny_bert_factory(NUM_LABELS),
        args=args,
        loss_fn=loss_fn,
        train_dataset=dataset,
        eval_dataset=dataset,
        data_collator=DataCollatorForTokenClassification(tiny_tokenizer),
    )


def statistics_keys(log: dict) -> set[str]:
    return {key for key in log if key.startswith(LOSS_STATISTICS_PREFIX)}


def test_training_logs_carry_loss_statistics_read_at_logging_steps_only(tmp_path, tiny_tokenizer, tiny_bert_factory):
    dataset = random_token_dataset(16, len(tiny_tokenizer), NUM_LABELS)
    loss_fn = LossWithStatistics()
    trainer = trainer_with(tmp_path, tiny_tokenizer, tiny_bert_factory, loss_fn, dataset)
    trainer.train()

    training_logs = [log for log in trainer.state.log_history if "loss" in log]
    assert [log["step"] for log in training_logs] == [2, 4]
    assert loss_fn.statistics_calls == 2
    last_batch_labels = dataset["labels"][3 * BATCH_SIZE : 4 * BATCH_SIZE]
    last_batch_valid = sum(label != -100 for labels in last_batch_labels for label in labels)
    prefix = LOSS_STATISTICS_PREFIX
    assert training_logs[-1][f"{prefix}valid_tokens"] == last_batch_valid
    assert training_logs[-1][f"{prefix}bin_share_0"] == 0.25
    assert training_logs[-1][f"{prefix}bin_share_1"] == 0.75
    assert training_logs[-1][f"{prefix}momentum"] == 0.5
    other_logs = [log for log in trainer.state.log_history if "loss" not in log]
    assert other_logs and not any(statistics_keys(log) for log in other_logs)


def test_evaluation_logs_carry_no_loss_statistics(tmp_path, tiny_tokenizer, tiny_bert_factory):
    loss_fn = LossWithStatistics()
    dataset = random_token_dataset(8, len(tiny_tokenizer), NUM_LABELS)
    trainer = trainer_with(tmp_path, tiny_tokenizer, tiny_bert_factory, loss_fn, dataset)
    metrics = trainer.evaluate()
    assert "eval_loss" in metrics and not statistics_keys(trainer.state.log_history[-1])
    assert loss_fn.statistics_calls == 0


def test_loss_without_statistics_logs_as_before(tmp_path, tiny_tokenizer, tiny_bert_factory):
    dataset = random_token_dataset(16, len(tiny_tokenizer), NUM_LABELS)
    trainer = trainer_with(tmp_path, tiny_tokenizer, tiny_bert_factory, build_loss("focal"), dataset)
    trainer.train()
    assert trainer.loss_statistics() == {}
    assert not any(statistics_keys(log) for log in trainer.state.log_history)
