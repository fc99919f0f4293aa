"""A run's sentence re-sampling (`--sentence_sampling`) and augmentation (`--augment`): its training rows,
its sampler over them, and what it records.

The repeat factors and the mention replacement are set up once by `run.prepare_run`
(`PreparedRun.sentence_factors`, `PreparedRun.mention_replacement`); `augmented_epochs` gives the
training rows of an augmented run (each epoch's sentences cut into windows by the run's tokenizer,
`data.augmentation.AugmentedEpochs`); `train_sampler` builds the `data.sampling.SentenceRepeatSampler`
(`data.augmentation.AugmentedSentenceSampler` when augmenting) the `ImbalanceTrainer` draws its
epochs from, and `sampling_metrics` is what `train_results.json` keeps of them.
"""

from __future__ import annotations

import logging
from functools import partial

import datasets
import numpy as np
from transformers import PreTrainedTokenizerBase

from ner_imbalance.constants import NO_SAMPLING, REPEAT_FACTOR
from ner_imbalance.data.alignment import tokenize_and_align
from ner_imbalance.data.augmentation import AugmentedEpochs, AugmentedSentenceSampler
from ner_imbalance.data.sampling import SentenceRepeatSampler
from ner_imbalance.training.prepared_run import PreparedRun

logger = logging.getLogger(__name__)


def augmented_epochs(
    prepared: PreparedRun, tokenizer: PreTrainedTokenizerBase, train_windows: datasets.Dataset
) -> AugmentedEpochs | None:
    """The training rows of an `--augment` run: each epoch's augmented sentences, windowed as
    `train_windows` were (the run's tokenizer, `--max_seq_length`, `--stride`, `--label_all_tokens`);
    None without augmentation."""
    if prepared.mention_replacement is None:
        return None
    data_args = prepared.data_args
    tokenize = partial(
        tokenize_and_align,
        tokenizer=tokenizer,
        label2id=prepared.word_corpus.label2id,
        max_seq_length=data_args.max_seq_length,
        stride=data_args.stride,
        label_all_tokens=data_args.label_all_tokens,
    )
    probabilities = ", ".join(
        f"{name} {probability:.2f}" for name, probability in prepared.mention_replacement.probabilities.items()
    )
    logger.info(
        "augmentation %s (p=%s, t=%s): replacement probability per mention: %s",
        data_args.augment,
        data_args.augment_rate,
        data_args.repeat_threshold,
        probabilities,
    )
    return AugmentedEpochs(prepared.mention_replacement, tokenize, train_windows)


def train_sampler(
    prepared: PreparedRun, train_windows: datasets.Dataset, epochs: AugmentedEpochs | None = None
) -> SentenceRepeatSampler | None:
    """The sampler a run's `ImbalanceTrainer` draws its training epochs from, logged as it starts;
    None without re-sampling or augmentation (the Trainer's own sampler).

    With `--sentence_sampling` it draws sentences by their repeat factors; with augmentation
    (`epochs`, from `augmented_epochs`) it draws over each epoch's augmented windows, every
    sentence once per epoch unless `--sentence_sampling` is also given.

    It draws whole epochs from the seed and the epoch (every process the same; accelerate then
    shards the batches), grouped by length as the Trainer's own sampler under
    `--train_sampling_strategy group_by_length`, in mega-batches of the batch over all processes
    and the gradient-accumulation window.
    """
    if prepared.sentence_factors is None and epochs is None:
        return None
    args = prepared.training_args
    sampling = prepared.data_args.sentence_sampling
    options = {
        "mode": REPEAT_FACTOR if sampling == NO_SAMPLING else sampling,
        "group_by_length": args.train_sampling_strategy == "group_by_length",
        "batch_size": args.per_device_train_batch_size * args.gradient_accumulation_steps * args.world_size,
        "seed": args.seed,
    }
    if epochs is None:
        sampler = SentenceRepeatSampler(
            train_windows["example_index"], prepared.sentence_factors, lengths=train_windows["length"], **options
        )
    else:  # without --sentence_sampling every sentence once per epoch
        factors = prepared.sentence_factors
        if factors is None:
            factors = np.ones(len(prepared.word_corpus.splits["train"]))
        sampler = AugmentedSentenceSampler(epochs, factors, **options)
    if prepared.type_repeat_factors is None:
        return sampler
    factors = ", ".join(
        f"{name} {found.repeat_factor:.2f} (in {100 * found.sentence_share:.1f} % of sentences)"
        for name, found in prepared.type_repeat_factors.items()
    )
    logger.info(
        "sentence sampling %s (t=%s): %d windows per epoch (%d without), repeat factors: %s",
        prepared.data_args.sentence_sampling,
        prepared.data_args.repeat_threshold,
        sampler.num_windows,
        len(train_windows),
        factors,
    )
    return sampler


def sampling_metrics(prepared: PreparedRun, sampler: SentenceRepeatSampler | None) -> dict[str, float]:
    """What `train_results.json` records of the sentence re-sampling: windows and sentence draws per
    epoch, and each entity type's repeat factor and sentence share; `{}` without re-sampling."""
    if sampler is None:
        return {}
    metrics = {
        "sampling_windows_per_epoch": float(sampler.num_windows),
        "sampling_sentence_draws_per_epoch": float(sampler.num_sentence_draws),
    }
    for name, found in (prepared.type_repeat_factors or {}).items():
        metrics[f"sampling_repeat_factor_{name}"] = found.repeat_factor
        metrics[f"sampling_sentence_share_{name}"] = found.sentence_share
    if prepared.mention_replacement is not None:
        for name, probability in prepared.mention_replacement.probabilities.items():
            metrics[f"augment_replacement_probability_{name}"] = probability
    return metrics
