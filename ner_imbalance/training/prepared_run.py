"""`PreparedRun`: the one object that carries every fact about a run, computed once by `run.prepare_run`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ner_imbalance.config.arguments import DataArguments, LossArguments, ModelArguments, NerTrainingArguments
from ner_imbalance.data.augmentation import MentionReplacement
from ner_imbalance.data.corpus import WordCorpus
from ner_imbalance.data.sampling import TypeRepeatFactor


@dataclass
class PreparedRun:
    """A run whose every check has passed, before any tokenizer or model is loaded: each fact
    about the run, computed once, that every later step reads.

    Holds the arguments (the output folder resolved, evaluation turned off without a validation
    split), the model folder or hub name, the word-level corpus and its label list, the run's one
    loss, the checkpoint to resume from, the decoding (`--decoding`), the calibration: the
    keyword arguments of `calibration.search_bias`, or None when the run does not calibrate, and
    the sentence re-sampling (`--sentence_sampling`): each training sentence's repeat factor and
    what `data.sampling.repeat_factors` found per entity type, or None without re-sampling; and
    the training-data augmentation (`--augment`): the `data.augmentation.MentionReplacement` that
    draws each epoch's sentences, or None without augmentation.
    """

    model_args: ModelArguments
    data_args: DataArguments
    loss_args: LossArguments
    training_args: NerTrainingArguments
    model_path: str
    word_corpus: WordCorpus
    loss_fn: torch.nn.Module
    resume_from_checkpoint: str | None
    decoding: str
    calibration: dict[str, Any] | None
    sentence_factors: np.ndarray | None = None
    type_repeat_factors: dict[str, TypeRepeatFactor] | None = None
    mention_replacement: MentionReplacement | None = None
