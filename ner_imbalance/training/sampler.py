"""A run's sentence re-sampling (`--sentence_sampling`): its sampler over the training windows, and what it records.

The repeat factors are computed once by `run.prepare_run` (`PreparedRun.sentence_factors`);
`train_sampler` builds the `data.sampling.SentenceRepeatSampler` the `ImbalanceTrainer` draws
its epochs from, and `sampling_metrics` is what `train_results.json` keeps of it.
"""

from __future__ import annotations

import logging

import datasets

from ner_imbalance.data.sampling import SentenceRepeatSampler
from ner_imbalance.training.prepared_run import PreparedRun

logger = logging.getLogger(__name__)


def train_sampler(prepared: PreparedRun, train_windows: datasets.Dataset) -> SentenceRepeatSampler | None:
    """The `--sentence_sampling` sampler a run's `ImbalanceTrainer` draws its training epochs from,
    logged as it starts; None without re-sampling (the Trainer's own sampler).

    It draws whole epochs from the seed and the epoch (every process the same; accelerate then
    shards the batches), grouped by length as the Trainer's own sampler under
    `--train_sampling_strategy group_by_length`, in mega-batches of the batch over all processes
    and the gradient-accumulation window.
    """
    if prepared.sentence_factors is None:
        return None
    args = prepared.training_args
    sampler = SentenceRepeatSampler(
        train_windows["example_index"],
        prepared.sentence_factors,
        mode=prepared.data_args.sentence_sampling,
        lengths=train_windows["length"],
        group_by_length=args.train_sampling_strategy == "group_by_length",
        batch_size=args.per_device_train_batch_size * args.gradient_accumulation_steps * args.world_size,
        seed=args.seed,
    )
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
    for name, found in prepared.type_repeat_factors.items():
        metrics[f"sampling_repeat_factor_{name}"] = found.repeat_factor
        metrics[f"sampling_sentence_share_{name}"] = found.sentence_share
    return metrics
