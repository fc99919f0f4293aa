"""`training.trainer.ImbalanceTrainer`: exact gradient accumulation, resumable loss state, non-finite loss
guard, sampling order, and what reaches the training logs (the loss module's `statistics()` at logging steps
only, GHM-C's bins, the loss shares by gold class)."""

from __future__ import annotations

import os

import pytest
import torch
import torch.nn.functional as F
from tiny_models import StopAtStep, random_token_dataset, tiny_corpus_flags, tiny_training_arguments
from transformers import DataCollatorForTokenClassification

from ner_imbalance.config.arguments import parse_arguments
from ner_imbalance.losses import build_loss
from ner_imbalance.training.run import build_trainer, prepare_run
from ner_imbalance.training.trainer import LOSS_STATE_NAME, LOSS_STATISTICS_PREFIX, ImbalanceTrainer

NUM_LABELS = 5
LOGGING_BATCH_SIZE = 4

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


def ghmc_bins_by_hand(logits: torch.Tensor, labels: torch.Tensor, bins: int) -> torch.Tensor:
    """The number of valid tokens of a batch in each GHM-C bin, from the paper's definition: gradient norm
    g = 1 - p(gold) (softmax), bin j holds j/bins <= g < (j+1)/bins, g = 1 in the last."""
    valid = labels != -100
    gold_probability = logits.float().softmax(-1)[valid].gather(-1, labels[valid].unsqueeze(-1)).squeeze(-1)
    bin_index = ((1 - gold_probability) * bins).floor().long().clamp(0, bins - 1)
    return torch.bincount(bin_index, minlength=bins).float()


def logged_bins(log: dict[str, float], name: str, bins: int) -> torch.Tensor:
    """The per-bin values `loss_stats/<name>_<j>` of one training log."""
    return torch.tensor([log[f"{LOSS_STATISTICS_PREFIX}{name}_{index}"] for index in range(bins)])


def test_ghmc_bin_statistics_reach_the_training_logs(tmp_path, tiny_tokenizer, tiny_bert_factory):
    bins, momentum = 4, 0.75
    loss_fn = build_loss("ghmc", num_labels=NUM_LABELS, bins=bins, momentum=momentum)
    batches = []  # (logits, labels) of every training call, as the loss received them
    loss_fn.register_forward_pre_hook(lambda module, args: batches.append((args[0].detach().clone(), args[1].clone())))
    trainer = ImbalanceTrainer(
        model=tiny_bert_factory(NUM_LABELS),
        args=tiny_training_arguments(tmp_path, max_steps=3, logging_steps=1, per_device_train_batch_size=4),
        loss_fn=loss_fn,
        train_dataset=random_token_dataset(12, len(tiny_tokenizer), NUM_LABELS),
        data_collator=DataCollatorForTokenClassification(tiny_tokenizer),
    )
    trainer.train()
    training_logs = [log for log in trainer.state.log_history if "loss" in log]
    assert [log["step"] for log in training_logs] == [1, 2, 3] and len(batches) == 3

    # The moving average with bias correction and the weights tot / (density * non-empty bins), step by step.
    average, updates = torch.zeros(bins), torch.zeros(bins)
    for log, (logits, labels) in zip(training_logs, batches):
        counts = ghmc_bins_by_hand(logits, labels, bins)
        nonempty = counts > 0
        average = torch.where(nonempty, momentum * average + (1 - momentum) * counts, average)
        updates = updates + nonempty
        density = average / (1 - momentum**updates)
        weights = torch.where(nonempty, counts.sum() / density / nonempty.sum(), torch.zeros(bins))
        logged_counts = logged_bins(log, "bin_counts", bins)
        assert logged_counts.tolist() == counts.tolist()
        assert float(logged_counts.sum()) == float((labels != -100).sum()), "every valid token in one bin"
        torch.testing.assert_close(logged_bins(log, "moving_average_counts", bins), average)
        torch.testing.assert_close(logged_bins(log, "bin_weights", bins), weights)


def test_logged_loss_shares_equal_an_independent_per_token_sum(tmp_path, tiny_model_dir):
    prepared = prepare_run(
        *parse_arguments(
            tiny_corpus_flags(
                tiny_model_dir,
                tmp_path / "run",
                *("--use_cpu", "true", "--report_to", "none", "--per_device_train_batch_size", "8"),
                *("--max_seq_length", "16", "--stride", "4", "--loss", "ce", "--class_weights", "inverse_frequency"),
            )
        )
    )
    trainer, corpus = build_trainer(prepared)
    columns = ("input_ids", "attention_mask", "labels")
    rows = corpus.windows["train"].select(range(8)).select_columns(list(columns))
    batch = trainer.data_collator([dict(row) for row in rows])
    trainer.model.train()
    torch.manual_seed(0)
    loss = trainer.compute_loss(trainer.model, dict(batch))
    shares = trainer.loss_shares()

    trainer.model.train()
    torch.manual_seed(0)  # the same dropout mask as the logged step
    logits = trainer.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()
    labels = batch["labels"].reshape(-1)
    valid = labels != -100
    per_token = F.cross_entropy(logits.reshape(-1, logits.shape[-1])[valid], labels[valid], reduction="none")
    weights = trainer.loss_fn.class_weights[labels[valid]]
    gold_probability = per_token.detach().neg().exp()
    per_token = (per_token * weights).detach()
    torch.testing.assert_close(per_token.sum() / valid.sum(), loss.detach(), rtol=1e-5, atol=1e-6)
    groups = {}
    for index, label in enumerate(prepared.word_corpus.label_list):
        groups.setdefault(label if label == "O" else label[2:], []).append(index)
    for group, ids in groups.items():
        in_group = torch.isin(labels[valid], torch.tensor(ids))
        expected_share = float(per_token[in_group].sum() / per_token.sum())
        assert shares[f"loss_share/{group}"] == pytest.approx(expected_share, rel=1e-5, abs=1e-7)
        expected_probability = float(gold_probability[in_group].mean()) if in_group.any() else 0.0
        assert shares[f"p_gold/{group}"] == pytest.approx(expected_probability, rel=1e-5, abs=1e-7)
    assert sum(value for name, value in shares.items() if name.startswith("loss_share/")) == pytest.approx(1.0)
    assert trainer.loss_shares()["loss_share/O"] == 0.0, "read once per logging step, then reset"


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
        per_device_train_batch_size=LOGGING_BATCH_SIZE,
        per_device_eval_batch_size=LOGGING_BATCH_SIZE,
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
    last_batch_labels = dataset["labels"][3 * LOGGING_BATCH_SIZE : 4 * LOGGING_BATCH_SIZE]
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
