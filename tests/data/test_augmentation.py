"""Mention replacement (`data.augmentation`) and its run (`--augment mention_replacement`).

- the probability of a replacement is min(1, p * sqrt(t / f_c)), and the share of replaced mentions
  of a type over many epochs matches it;
- a replacement is another training mention of the same type, its tags rebuilt for its length in
  the corpus's scheme (IOB2 and IOBES), every sequence valid;
- the draws depend on (seed, epoch) only and differ across epochs; rate 0 changes nothing;
- in a run: dev windows and class weights are those without augmentation, the epoch's rows are
  the windows of the augmented sentences, a resumed run draws what the uninterrupted one drew,
  and rate 0 trains exactly as no augmentation (with repeat-factor sampling);
- the flags are checked (one line each).
"""

from __future__ import annotations

import math
from collections import Counter

import datasets
import numpy as np
import pytest
import torch
from tiny_models import StopAfterFirstEpoch, run_flags, two_epoch_trainer

from ner_imbalance.config.arguments import parse_arguments
from ner_imbalance.constants import IOB2, IOBES
from ner_imbalance.data.augmentation import (
    AugmentedEpochs,
    EpochRow,
    MentionReplacement,
    mention_tags,
    replacement_probabilities,
    sentence_mentions,
)
from ner_imbalance.data.sampling import repeat_factors
from ner_imbalance.errors import UsageError
from ner_imbalance.tags import find_invalid_transitions
from ner_imbalance.training.run import build_trainer, prepare_run

IOB2_SENTENCES = {
    "tokens": [
        ["John", "Smith", "saw", "Paris"],
        ["Mary", "went", "to", "New", "York", "City"],
        ["nothing", "here"],
        ["Ann", "met", "Bob", "in", "Rome"],
        ["Acme", "Corp", "hired", "Lee"],
    ],
    "tags": [
        ["B-PER", "I-PER", "O", "B-LOC"],
        ["B-PER", "O", "O", "B-LOC", "I-LOC", "I-LOC"],
        ["O", "O"],
        ["B-PER", "O", "B-PER", "O", "B-LOC"],
        ["B-ORG", "I-ORG", "O", "B-PER"],
    ],
}


def iob2_split() -> datasets.Dataset:
    return datasets.Dataset.from_dict(IOB2_SENTENCES)


def mention_texts(tokens, tags) -> Counter:
    return Counter((tuple(tokens[m.start : m.end]), m.entity_type) for m in sentence_mentions(tags))


def test_the_probability_is_the_rate_times_the_square_root_of_t_over_the_share_capped_at_one():
    tags = IOB2_SENTENCES["tags"]
    probabilities = replacement_probabilities(tags, threshold=0.5, rate=0.3)
    # PER in 4 of 5 sentences, LOC in 3, ORG in 1
    assert probabilities == pytest.approx(
        {"PER": 0.3 * math.sqrt(0.5 / 0.8), "LOC": 0.3 * math.sqrt(0.5 / 0.6), "ORG": min(1, 0.3 * math.sqrt(2.5))}
    )
    assert replacement_probabilities(tags, threshold=0.5, rate=0.9)["ORG"] == 1.0
    _factors, per_type = repeat_factors(tags, 0.5)
    assert {name: found.sentence_share for name, found in per_type.items()} == {"LOC": 0.6, "ORG": 0.2, "PER": 0.8}


def test_the_share_of_replaced_mentions_follows_the_probability():
    replacement = MentionReplacement(iob2_split(), scheme=IOB2, threshold=0.5, rate=0.3, seed=0)
    replaced = np.stack([replacement.replacements(epoch) >= 0 for epoch in range(4000)]).mean(axis=0)
    types = [m.entity_type for mentions in replacement.mentions for m in mentions]
    for name in {"PER", "LOC"}:
        share = replaced[[index for index, t in enumerate(types) if t == name]].mean()
        assert share == pytest.approx(replacement.probabilities[name], abs=0.02)
    assert replaced[types.index("ORG")] == 0.0, "the only ORG mention has no other to take its place"


def test_sentence_mentions_read_iob2_and_iobes_and_repair_inside_tags():
    assert sentence_mentions(["B-PER", "I-PER", "O", "B-LOC", "B-LOC"]) == [(0, 2, "PER"), (3, 4, "LOC"), (4, 5, "LOC")]
    assert sentence_mentions(["S-PER", "B-LOC", "I-LOC", "E-LOC", "O"]) == [(0, 1, "PER"), (1, 4, "LOC")]
    assert sentence_mentions(["O", "I-PER", "I-PER", "I-LOC"]) == [(1, 3, "PER"), (3, 4, "LOC")]


def test_mention_tags_follow_the_scheme():
    assert mention_tags("LOC", 3, IOB2) == ["B-LOC", "I-LOC", "I-LOC"]
    assert mention_tags("LOC", 1, IOBES) == ["S-LOC"]
    assert mention_tags("LOC", 3, IOBES) == ["B-LOC", "I-LOC", "E-LOC"]


@pytest.mark.parametrize("scheme", [IOB2, IOBES])
def test_replacements_are_training_mentions_of_the_same_type_with_valid_tags(scheme):
    split = iob2_split()
    if scheme == IOBES:
        split = datasets.Dataset.from_dict(
            {
                "tokens": IOB2_SENTENCES["tokens"],
                "tags": [
                    ["B-PER", "E-PER", "O", "S-LOC"],
                    ["S-PER", "O", "O", "B-LOC", "I-LOC", "E-LOC"],
                    ["O", "O"],
                    ["S-PER", "O", "S-PER", "O", "S-LOC"],
                    ["B-ORG", "E-ORG", "O", "S-PER"],
                ],
            }
        )
    replacement = MentionReplacement(split, scheme=scheme, threshold=1.0, rate=1.0, seed=7)
    training_mentions = Counter()
    for tokens, tags in zip(split["tokens"], split["tags"]):
        training_mentions += mention_texts(tokens, tags)
    changed = 0
    for epoch in range(20):
        sentences = replacement.epoch_sentences(epoch)
        for tokens, tags, original_tags in zip(sentences["tokens"], sentences["tags"], split["tags"]):
            assert len(tokens) == len(tags)
            assert find_invalid_transitions(tags) == []
            mentions = sentence_mentions(tags)
            assert [m.entity_type for m in mentions] == [m.entity_type for m in sentence_mentions(original_tags)]
            for mention in mentions:
                assert (tuple(tokens[mention.start : mention.end]), mention.entity_type) in training_mentions
                assert tags[mention.start : mention.end] == mention_tags(
                    mention.entity_type, mention.end - mention.start, scheme
                )
        changed += sentences["tokens"] != split["tokens"]
        lengths = [len(tokens) for tokens in sentences["tokens"]]
        changed_length = lengths != [len(tokens) for tokens in split["tokens"]]
        if changed_length:
            break
    assert changed and changed_length, "mentions of other lengths come in"


def test_draws_depend_on_the_seed_and_the_epoch_only():
    first = MentionReplacement(iob2_split(), scheme=IOB2, threshold=1.0, rate=0.5, seed=3)
    again = MentionReplacement(iob2_split(), scheme=IOB2, threshold=1.0, rate=0.5, seed=3)
    again.epoch_sentences(5)  # what was drawn before does not matter
    assert again.epoch_sentences(2).to_dict() == first.epoch_sentences(2).to_dict()
    draws = [tuple(first.replacements(epoch)) for epoch in range(6)]
    assert len(set(draws)) > 1, "a fresh draw each epoch"
    other_seed = MentionReplacement(iob2_split(), scheme=IOB2, threshold=1.0, rate=0.5, seed=4)
    assert [tuple(other_seed.replacements(epoch)) for epoch in range(6)] != draws


def test_rate_zero_replaces_nothing():
    replacement = MentionReplacement(iob2_split(), scheme=IOB2, threshold=0.5, rate=0.0, seed=0)
    for epoch in range(5):
        assert replacement.epoch_sentences(epoch).to_dict() == iob2_split().to_dict()


# ---- in a run (tiny BERT, tiny corpus) ----


def augmented_trainer(model_dir, output_dir, *extra: str):
    return two_epoch_trainer(
        model_dir,
        output_dir,
        "--augment",
        "mention_replacement",
        "--augment_rate",
        "1.0",
        "--repeat_threshold",
        "1.0",
        "--save_strategy",
        "epoch",
        "--seed",
        "3",
        *extra,
    )


class _RecordRows:
    """The (epoch, row) keys the run's sampler yields, by epoch, and the input ids of their rows."""

    def __init__(self, trainer) -> None:
        self.keys: dict[int, list[EpochRow]] = {}
        self.inputs: dict[int, list[list[int]]] = {}
        sampler, epochs = trainer.train_sampler, trainer.train_dataset
        original = sampler.__class__.__iter__

        def recording_iter(this):
            keys = list(original(this))
            self.keys[this.epoch] = keys
            self.inputs[this.epoch] = [epochs[key]["input_ids"] for key in keys]
            return iter(keys)

        sampler.__class__ = type("RecordingSampler", (sampler.__class__,), {"__iter__": recording_iter})


def test_a_run_trains_on_each_epochs_augmented_windows_and_leaves_dev_and_weights_alone(tmp_path, tiny_model_dir):
    trainer = augmented_trainer(tiny_model_dir, tmp_path / "run", "--class_weights", "inverse_frequency")
    plain = two_epoch_trainer(tiny_model_dir, tmp_path / "plain", "--class_weights", "inverse_frequency")
    assert isinstance(trainer.train_dataset, AugmentedEpochs)
    assert trainer.eval_dataset is None or trainer.eval_dataset.to_dict() == plain.eval_dataset.to_dict()
    torch.testing.assert_close(trainer.loss_fn.class_weights, plain.loss_fn.class_weights)
    assert len(trainer.get_train_dataloader()) == len(plain.get_train_dataloader()), "the epoch keeps its length"

    epochs = trainer.train_dataset
    replacement = epochs.replacement
    for epoch in (0, 1):
        windows = epochs.windows(epoch)
        expected = epochs.tokenize(replacement.epoch_sentences(epoch))
        assert windows.to_dict() == expected.to_dict()
    assert epochs.windows(0)["input_ids"] != epochs.windows(1)["input_ids"]
    assert epochs.windows(0)["input_ids"] != plain.train_dataset["input_ids"]


def test_a_resumed_augmented_run_draws_the_same_rows_as_an_uninterrupted_one(tmp_path, tiny_model_dir):
    uninterrupted = augmented_trainer(tiny_model_dir, tmp_path / "whole")
    recorded = _RecordRows(uninterrupted)
    uninterrupted.train()
    assert sorted(recorded.keys) == [0, 1] and recorded.inputs[0] != recorded.inputs[1]
    assert {key.epoch for key in recorded.keys[1]} == {1}

    first = augmented_trainer(tiny_model_dir, tmp_path / "cut")
    first.add_callback(StopAfterFirstEpoch())
    first.train()
    checkpoint = sorted((tmp_path / "cut").glob("checkpoint-*"))[-1]
    resumed = augmented_trainer(tiny_model_dir, tmp_path / "cut", "--resume_from_checkpoint", str(checkpoint))
    resumed_rows = _RecordRows(resumed)
    resumed.train(resume_from_checkpoint=str(checkpoint))
    assert resumed_rows.inputs[1] == recorded.inputs[1]
    for name, value in uninterrupted.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[name]), name


def test_rate_zero_trains_exactly_as_no_augmentation(tmp_path, tiny_model_dir):
    sampling = ("--sentence_sampling", "repeat_factor", "--repeat_threshold", "0.5", "--seed", "2")
    plain = two_epoch_trainer(tiny_model_dir, tmp_path / "plain", *sampling)
    plain.train()  # each trainer trains right after it is built (and seeded), as in a run
    augmented = two_epoch_trainer(
        tiny_model_dir, tmp_path / "rate0", *sampling, "--augment", "mention_replacement", "--augment_rate", "0"
    )
    assert isinstance(augmented.train_dataset, AugmentedEpochs)
    augmented.train()
    for name, value in plain.model.state_dict().items():
        assert torch.equal(value, augmented.model.state_dict()[name]), name


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--augment", "swap"], "--augment"),
        (["--augment", "mention_replacement", "--augment_rate", "1.5"], "--augment_rate must be in"),
        (["--augment", "mention_replacement", "--augment_rate", "-0.1"], "--augment_rate must be in"),
        (["--augment_rate", "0.3"], "--augment_rate applies to --augment"),
        (["--augment", "mention_replacement"], "needs --augment_rate"),
    ],
)
def test_bad_augmentation_flags_are_one_line_naming_the_flag(extra, message, tmp_path, tiny_model_dir):
    with pytest.raises(UsageError, match=message) as error:
        parse_arguments(run_flags(tiny_model_dir, tmp_path / "run", *extra))
    assert "\n" not in str(error.value)


def test_repeat_threshold_is_accepted_with_augmentation_alone(tmp_path, tiny_model_dir):
    flags = run_flags(
        tiny_model_dir, tmp_path / "run", "--augment", "mention_replacement", "--augment_rate", "0.2",
        "--repeat_threshold", "0.3",
    )  # fmt: skip
    prepared = prepare_run(*parse_arguments(flags))
    assert prepared.mention_replacement is not None and prepared.sentence_factors is None
    trainer, _corpus = build_trainer(prepared)
    assert trainer.train_sampler is not None and trainer.train_sampler.num_sentence_draws == len(
        prepared.word_corpus.splits["train"]
    ), "without --sentence_sampling every sentence once per epoch"
