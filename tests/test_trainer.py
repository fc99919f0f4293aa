"""ImbalanceTrainer: exact gradient accumulation, resumable loss state, non-finite loss guard."""

from __future__ import annotations

import os

import pytest
import torch
from tiny_models import StopAtStep, random_token_dataset, tiny_training_arguments
from transformers import DataCollatorForTokenClassification

from ner_imbalance.losses import build_loss
from ner_imbalance.training.trainer import LOSS_STATE_NAME, ImbalanceTrainer

NUM_LABELS = 5

LOSS_SETTINGS = {
    "ce": {},
    "ce_weighted": {"class_weights": [0.2, 1.0, 2.0, 1.5, 3.0]},
    "focal": {"gamma": 2.0},
    "softened": {"K": 2.0},
    "softened_literal": {"K": 2.0, "variant": "literal"},
    "truncated": {"threshold": 0.5},
    # GHM-C's density is a statistic of the tokens of one forward call, so with several bins a
    # micro-batch cannot reproduce the histogram of the whole accumulation window (documented in
    # the README); with one bin it is CE and checks GHM-C's normalisation path.
    "ghmc_one_bin": {"bins": 1, "momentum": 0.0},
    "ghmc_sigmoid_one_bin": {"bins": 1, "momentum": 0.0, "variant": "sigmoid"},
}


def loss_from_setting(setting: str) -> torch.nn.Module:
    name = setting.split("_")[0]
    return build_loss(name, num_labels=NUM_LABELS, **LOSS_SETTINGS.get(setting, {}))


def no_dropout_bert(factory, seed: int = 0):
    return factory(NUM_LABELS, seed=seed, dropout=0.0)


def weights_after_one_step(tmp_path, tiny_tokenizer, factory, setting: str, **overrides) -> dict[str, torch.Tensor]:
    model = no_dropout_bert(factory)
    trainer = ImbalanceTrainer(
        model=model,
        args=tiny_training_arguments(tmp_path, **overrides),
        loss_fn=loss_from_setting(setting),
        train_dataset=random_token_dataset(8, len(tiny_tokenizer), NUM_LABELS),
        data_collator=DataCollatorForTokenClassification(tiny_tokenizer),
    )
    trainer.train()
    return {name: parameter.detach().clone() for name, parameter in model.named_parameters()}


@pytest.mark.parametrize("setting", sorted(LOSS_SETTINGS))
def test_gradient_accumulation_matches_one_large_batch(tmp_path, tiny_tokenizer, tiny_bert_factory, setting):
    initial = {name: p.detach().clone() for name, p in no_dropout_bert(tiny_bert_factory).named_parameters()}
    full = weights_after_one_step(tmp_path / "ga1", tiny_tokenizer, tiny_bert_factory, setting)
    accumulated = weights_after_one_step(
        tmp_path / "ga4",
        tiny_tokenizer,
        tiny_bert_factory,
        setting,
        per_device_train_batch_size=2,
        gradient_accumulation_steps=4,
    )
    moved = [name for name in full if not torch.equal(full[name], initial[name])]
    assert "classifier.weight" in moved
    for name in full:
        # SGD with a constant learning rate: the weight change is -lr * gradient.
        torch.testing.assert_close(accumulated[name] - initial[name], full[name] - initial[name], atol=1e-5, rtol=0)


def test_compute_loss_uses_loss_module_and_token_normalisation(tmp_path, tiny_tokenizer, tiny_bert_factory):
    model = no_dropout_bert(tiny_bert_factory)
    loss_fn = loss_from_setting("focal")
    trainer = ImbalanceTrainer(
        model=model,
        args=tiny_training_arguments(tmp_path),
        loss_fn=loss_fn,
        data_collator=DataCollatorForTokenClassification(tiny_tokenizer),
    )
    batch = DataCollatorForTokenClassification(tiny_tokenizer)(
        list(random_token_dataset(4, len(tiny_tokenizer), NUM_LABELS))
    )
    model.eval()
    with torch.no_grad():
        loss = trainer.compute_loss(model, dict(batch), num_items_in_batch=torch.tensor(100))
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    per_token = build_loss("focal", num_labels=NUM_LABELS, gamma=2.0, reduction="none")(logits, batch["labels"])
    torch.testing.assert_close(loss, per_token.sum() / 100)


def test_resume_restores_ghmc_state_and_reproduces_uninterrupted_run(tmp_path, tiny_tokenizer, tiny_bert_factory):
    dataset = random_token_dataset(24, len(tiny_tokenizer), NUM_LABELS, seed=1)
    collator = DataCollatorForTokenClassification(tiny_tokenizer)
    common = dict(
        per_device_train_batch_size=4,
        learning_rate=1e-3,
        optim="adamw_torch",
        max_steps=6,
        save_strategy="steps",
        save_steps=3,
        save_total_limit=None,
        train_sampling_strategy="random",
        full_determinism=True,
    )

    def make_trainer(output_dir, callbacks=None):
        return ImbalanceTrainer(
            model=tiny_bert_factory(NUM_LABELS, seed=3),
            args=tiny_training_arguments(output_dir, **common),
            loss_fn=build_loss("ghmc", num_labels=NUM_LABELS, bins=5, momentum=0.75),
            train_dataset=dataset,
            data_collator=collator,
            callbacks=callbacks,
        )

    uninterrupted = make_trainer(tmp_path / "straight")
    uninterrupted.train()

    interrupted = make_trainer(tmp_path / "resumed", callbacks=[StopAtStep(3)])
    interrupted.train()
    checkpoint = tmp_path / "resumed" / "checkpoint-3"
    assert (checkpoint / LOSS_STATE_NAME).is_file()
    assert not (tmp_path / "resumed" / "checkpoint-6").exists()

    resumed = make_trainer(tmp_path / "resumed")
    resumed.train(resume_from_checkpoint=True)

    for (name, expected), (_, actual) in zip(
        uninterrupted.model.state_dict().items(), resumed.model.state_dict().items()
    ):
        torch.testing.assert_close(actual, expected, atol=0, rtol=0, msg=name)
    for name, expected in uninterrupted.loss_fn.state_dict().items():
        torch.testing.assert_close(resumed.loss_fn.state_dict()[name], expected, atol=0, rtol=0, msg=name)


class NanFromStep(torch.nn.Module):
    """Cross-entropy that turns NaN from the `bad_call`-th training call on."""

    def __init__(self, bad_call: int) -> None:
        super().__init__()
        self.inner = build_loss("ce")
        self.bad_call = bad_call
        self.calls = 0

    def forward(self, logits, labels, num_items_in_batch=None):
        self.calls += 1
        loss = self.inner(logits, labels, num_items_in_batch=num_items_in_batch)
        return loss * float("nan") if self.calls >= self.bad_call else loss


def test_nonfinite_loss_stops_training_and_keeps_earlier_checkpoints(tmp_path, tiny_tokenizer, tiny_bert_factory):
    trainer = ImbalanceTrainer(
        model=tiny_bert_factory(NUM_LABELS),
        args=tiny_training_arguments(
            tmp_path,
            per_device_train_batch_size=2,
            max_steps=8,
            save_strategy="steps",
            save_steps=2,
            learning_rate=1e-3,
        ),
        loss_fn=NanFromStep(bad_call=3),
        train_dataset=random_token_dataset(16, len(tiny_tokenizer), NUM_LABELS),
        data_collator=DataCollatorForTokenClassification(tiny_tokenizer),
    )
    with pytest.raises(FloatingPointError, match="at step 3"):
        trainer.train()
    assert sorted(os.listdir(tmp_path)) == ["checkpoint-2"]
    from safetensors.torch import load_file

    weights = load_file(str(tmp_path / "checkpoint-2" / "model.safetensors"))
    assert all(torch.isfinite(tensor).all() for tensor in weights.values())


def test_group_by_length_sampler_uses_precomputed_lengths(tmp_path, tiny_tokenizer, tiny_bert_factory):
    dataset = random_token_dataset(12, len(tiny_tokenizer), NUM_LABELS)
    lengths = [len(ids) for ids in dataset["input_ids"]]
    dataset = dataset.add_column("length", lengths)
    trainer = ImbalanceTrainer(
        model=tiny_bert_factory(NUM_LABELS),
        args=tiny_training_arguments(tmp_path, train_sampling_strategy="group_by_length"),
        loss_fn=build_loss("ce"),
        train_dataset=dataset,
        data_collator=DataCollatorForTokenClassification(tiny_tokenizer),
    )
    sampler = trainer._get_train_sampler(dataset.remove_columns("length"))
    assert sampler.lengths == lengths


def test_evaluation_keeps_dataset_order_under_group_by_length(tmp_path, tiny_tokenizer, tiny_bert_factory):
    dataset = random_token_dataset(40, len(tiny_tokenizer), NUM_LABELS, seed=2)
    dataset = dataset.add_column("length", [len(ids) for ids in dataset["input_ids"]])
    trainer = ImbalanceTrainer(
        model=tiny_bert_factory(NUM_LABELS),
        args=tiny_training_arguments(tmp_path, train_sampling_strategy="group_by_length", per_device_eval_batch_size=4),
        loss_fn=build_loss("ce"),
        train_dataset=dataset,
        eval_dataset=dataset,
        data_collator=DataCollatorForTokenClassification(tiny_tokenizer),
    )
    seen = [row for batch in trainer.get_eval_dataloader() for row in batch["input_ids"].tolist()]
    assert [row[: len(ids)] for row, ids in zip(seen, dataset["input_ids"])] == dataset["input_ids"]


def test_ghmc_bin_statistics_reach_the_training_logs(tmp_path, tiny_tokenizer, tiny_bert_factory):
    bins = 4
    trainer = ImbalanceTrainer(
        model=tiny_bert_factory(NUM_LABELS),
        args=tiny_training_arguments(tmp_path, max_steps=2, logging_steps=1, per_device_train_batch_size=4),
        loss_fn=build_loss("ghmc", num_labels=NUM_LABELS, bins=bins, momentum=0.75),
        train_dataset=random_token_dataset(8, len(tiny_tokenizer), NUM_LABELS),
        data_collator=DataCollatorForTokenClassification(tiny_tokenizer),
    )
    trainer.train()
    training_logs = [log for log in trainer.state.log_history if "loss" in log]
    assert len(training_logs) == 2
    for log in training_logs:
        counts = [log[f"loss_stats/bin_counts_{index}"] for index in range(bins)]
        assert sum(counts) > 0 and all(count >= 0 for count in counts)
        assert f"loss_stats/moving_average_counts_{bins - 1}" in log
