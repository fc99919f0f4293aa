"""Sentence re-sampling inside a run, and the loss shares by gold class in the training logs.

- the logged loss shares and mean gold probabilities equal an independent per-token computation on
  a fixed batch (cross-entropy per token, grouped by the gold tag's entity type);
- `--sentence_sampling repeat_factor` reaches the Trainer: the epoch has the sampler's length, the
  train results record it, and a run resumed from an epoch's checkpoint draws the same window
  indices in the next epoch as the uninterrupted run;
- the flags are checked.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from tiny_models import StopAtStep, tiny_corpus_flags
from transformers import TrainerCallback

from ner_imbalance.config.arguments import parse_arguments
from ner_imbalance.data.sampling import SentenceRepeatSampler
from ner_imbalance.training.run import build_trainer, execute_run, prepare_run


def run_flags(model_dir, output_dir, *extra: str) -> list[str]:
    return tiny_corpus_flags(
        model_dir,
        output_dir,
        "--use_cpu",
        "true",
        "--disable_tqdm",
        "true",
        "--report_to",
        "none",
        "--per_device_train_batch_size",
        "8",
        "--max_seq_length",
        "16",
        "--stride",
        "4",
        *extra,
    )


def test_logged_loss_shares_equal_an_independent_per_token_sum(tmp_path, tiny_model_dir):
    prepared = prepare_run(
        *parse_arguments(
            run_flags(tiny_model_dir, tmp_path / "run", "--loss", "ce", "--class_weights", "inverse_frequency")
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


class _RecordDraws(TrainerCallback):
    """The window indices the run's sampler yields, epoch by epoch, as the Trainer iterates it."""

    def __init__(self, sampler: SentenceRepeatSampler) -> None:
        self.draws: dict[int, list[int]] = {}
        original = sampler.__class__.__iter__

        def recording_iter(this):
            indices = list(original(this))
            self.draws[this.epoch] = indices
            return iter(indices)

        sampler.__class__ = type("RecordingSampler", (sampler.__class__,), {"__iter__": recording_iter})


class _StopAfterFirstEpoch(TrainerCallback):
    def on_epoch_end(self, args, state, control, **kwargs):
        control.should_training_stop = True
        control.should_save = True
        return control


def two_epoch_trainer(model_dir, output_dir, *extra: str):
    """The trainer of a 2-epoch run on the tiny corpus (no evaluation), resuming if `extra` says so."""
    flags = run_flags(
        model_dir, output_dir, "--num_train_epochs", "2", "--eval_strategy", "no", "--load_best_model_at_end", "false"
    )
    arguments = parse_arguments([*flags, *extra])
    return build_trainer(prepare_run(*arguments, resume_from_checkpoint=arguments[3].resume_from_checkpoint))[0]


def sampled_trainer(model_dir, output_dir, *extra: str):
    trainer = two_epoch_trainer(
        model_dir,
        output_dir,
        "--sentence_sampling",
        "repeat_factor",
        "--repeat_threshold",
        "0.5",
        "--save_strategy",
        "epoch",
        "--seed",
        "3",
        *extra,
    )
    return trainer, _RecordDraws(trainer.train_sampler)


def test_a_resumed_run_draws_the_same_sentences_as_an_uninterrupted_one(tmp_path, tiny_model_dir):
    uninterrupted, recorded = sampled_trainer(tiny_model_dir, tmp_path / "whole")
    sampler = uninterrupted.train_sampler
    assert len(uninterrupted.get_train_dataloader()) == -(-len(sampler) // 8), "the epoch is the sampler's"
    assert sampler.num_windows != len(uninterrupted.train_dataset), "repeat factors change the epoch's length"
    uninterrupted.train()
    assert sorted(recorded.draws) == [0, 1] and recorded.draws[0] != recorded.draws[1]

    first, _ = sampled_trainer(tiny_model_dir, tmp_path / "interrupted")
    first.add_callback(_StopAfterFirstEpoch())
    first.train()
    checkpoint = sorted((tmp_path / "interrupted").glob("checkpoint-*"))[-1]
    resumed, resumed_draws = sampled_trainer(
        tiny_model_dir, tmp_path / "interrupted", "--resume_from_checkpoint", str(checkpoint)
    )
    resumed.train(resume_from_checkpoint=str(checkpoint))
    assert resumed_draws.draws[1] == recorded.draws[1]
    for name, value in uninterrupted.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[name]), name


def test_train_results_record_the_epoch_and_the_repeat_factors(tmp_path, tiny_model_dir):
    flags = run_flags(
        tiny_model_dir,
        tmp_path / "run",
        "--sentence_sampling",
        "weighted",
        "--repeat_threshold",
        "0.5",
        "--max_steps",
        "2",
    )
    prepared = prepare_run(*parse_arguments(flags))
    results = execute_run(prepared)
    train = results["train"]
    assert train["sampling_windows_per_epoch"] > 0
    types = {label[2:] for label in prepared.word_corpus.label_list if label != "O"}
    for entity_type in types:
        found = prepared.type_repeat_factors[entity_type]
        assert train[f"sampling_repeat_factor_{entity_type}"] == found.repeat_factor
        assert found.repeat_factor == pytest.approx(max(1.0, np.sqrt(0.5 / found.sentence_share)))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--sentence_sampling", "oversample"], "--sentence_sampling"),
        (["--sentence_sampling", "repeat_factor", "--repeat_threshold", "0"], "--repeat_threshold"),
        (["--repeat_threshold", "0.3"], "--repeat_threshold applies to --sentence_sampling"),
    ],
)
def test_bad_sampling_flags_name_the_flag(extra, message, tmp_path, tiny_model_dir):
    with pytest.raises(ValueError, match=message):
        parse_arguments(run_flags(tiny_model_dir, tmp_path / "run", *extra))


def grouped_trainer(model_dir, output_dir, *extra: str):
    trainer = two_epoch_trainer(
        model_dir, output_dir, "--save_strategy", "steps", "--save_steps", "3", "--seed", "5", *extra
    )
    assert trainer.args.train_sampling_strategy == "group_by_length" and trainer.train_sampler is None, "the default"
    return trainer


def test_a_run_resumed_mid_epoch_with_length_grouped_batches_ends_with_the_same_weights(tmp_path, tiny_model_dir):
    uninterrupted = grouped_trainer(tiny_model_dir, tmp_path / "whole")
    steps_per_epoch = len(uninterrupted.get_train_dataloader())
    assert steps_per_epoch > 3, "checkpoint-3 lies inside the first epoch"
    uninterrupted.train()
    interrupted = grouped_trainer(tiny_model_dir, tmp_path / "cut")
    interrupted.add_callback(StopAtStep(4))
    interrupted.train()
    resumed = grouped_trainer(
        tiny_model_dir, tmp_path / "cut", "--resume_from_checkpoint", str(tmp_path / "cut" / "checkpoint-3")
    )
    resumed.train(resume_from_checkpoint=str(tmp_path / "cut" / "checkpoint-3"))
    for name, value in uninterrupted.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[name]), name
