"""`training.sampler`: sentence re-sampling inside a run.

- `--sentence_sampling repeat_factor` reaches the Trainer: the epoch has the sampler's length, the
  train results record it, and a run resumed from an epoch's checkpoint draws the same window
  indices in the next epoch as the uninterrupted run;
- the flags are checked.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny_models import StopAfterFirstEpoch, StopAtStep, run_flags, two_epoch_trainer
from transformers import TrainerCallback

from ner_imbalance.config.arguments import parse_arguments
from ner_imbalance.data.sampling import SentenceRepeatSampler
from ner_imbalance.training.run import execute_run, prepare_run


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
    first.add_callback(StopAfterFirstEpoch())
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
