"""`transformers.pipeline` with a model folder's own windows and decoding: the entities `Tagger.tag_text` gives.

`NerPipeline` is a `ChunkPipeline`, as `TokenClassificationPipeline` is: `preprocess` splits a text into
words (`files.text_sentence`) and into the windows of evaluation (`tagger.tagging_windows`), one model
input per window; `_forward` turns a batch of windows into sub-token probabilities; `postprocess`
receives every window of one text, takes each word's probabilities from the window it is predicted
from and decodes the words as `Tagger` does (`tagger.WordDecoder`: the folder's decoding, Viterbi for a
run of today; a calibration bias is folded into the classifier). A text longer than a window is windowed,
never truncated. Each entity is a dict as the token-classification pipeline gives with
`aggregation_strategy="simple"`: `entity_group` (its type), `score` (the mean probability of its words'
tags), `word` (its exact characters in the text), `start` and `end` (their offsets).

Importing this module registers the task `PIPELINE_TASK` ("ner-imbalance") with transformers:

    import transformers
    import ner_imbalance.inference  # registers "ner-imbalance"
    ner = transformers.pipeline("ner-imbalance", model="runs/wnut17_focal")
    ner("Taylor Swift played in New York")
    # [{'entity_group': 'person', 'score': 0.91, 'word': 'Taylor Swift', 'start': 0, 'end': 12}, ...]

`ner_pipeline(folder)` (also `ner_imbalance.ner_pipeline`) builds the same after the folder's checks.

A list of folders as `model` (`ner_pipeline([A, B, C])`, `transformers.pipeline("ner-imbalance", model=[A, B, C])`)
is a seed ensemble, loaded by `tagger.load_ensemble` as `Tagger.from_folders` loads it: the members' word
log-probabilities are averaged before decoding, with the first folder's tokenizer, windows and decoding.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from transformers import AutoModelForTokenClassification, PreTrainedModel, pipeline
from transformers.pipelines import PIPELINE_REGISTRY
from transformers.pipelines.base import ChunkPipeline

from ner_imbalance.constants import MAX_SEQ_LENGTH, PIPELINE_TASK, STRIDE
from ner_imbalance.inference.files import text_sentence
from ner_imbalance.inference.sentences import Entity
from ner_imbalance.inference.tagger import WordDecoder, load_ensemble, load_tokenizer, tagging_windows
from ner_imbalance.utils.logging_state import progress_bars_off

WINDOW_KEYS = ("word_index", "word_position", "sentence")
"""What a window carries besides the model inputs: its words (indices in the text's words), the position of
each one's first sub-token in the window, and (first window only) the text as a `Sentence`."""


def entity_record(entity: Entity) -> dict[str, Any]:
    """An entity of raw text as the token-classification pipeline's `aggregation_strategy="simple"` gives it."""
    return {
        "entity_group": entity.type,
        "score": entity.probability,
        "word": entity.text,
        "start": entity.char_start,
        "end": entity.char_end,
    }


class NerPipeline(ChunkPipeline):
    """Entities of raw texts from a model trained by `train_ner.py`, decoded as its evaluation decoded them.

    Call it with a text (-> a list of entity dicts) or a list of texts (-> one list per text).

    Args (besides those of every pipeline: `tokenizer`, `device`, `dtype`, `batch_size`, ...):
        model: a token-classification model, or a list of model folders: a seed ensemble (`load_ensemble`,
            in `dtype`), with the first folder's tokenizer unless `tokenizer` is given.
        decoding: "argmax" or "viterbi"; default the decoding recorded in the model's config.
        max_seq_length, stride: the windows of long texts, as `Tagger`'s (`--max_seq_length`, `--stride`).
    """

    _load_processor = False
    _load_image_processor = False
    _load_video_processor = False
    _load_feature_extractor = False
    _load_tokenizer = None
    """Optional for `transformers.pipeline`: it loads the tokenizer of a folder name, and passes none for a
    list of folders, whose first folder's tokenizer `__init__` loads."""

    def __init__(
        self,
        model: PreTrainedModel | Sequence[str | os.PathLike],
        tokenizer: Any = None,
        *args: Any,
        decoding: str | None = None,
        max_seq_length: int = MAX_SEQ_LENGTH,
        stride: int = STRIDE,
        **kwargs: Any,
    ) -> None:
        if isinstance(model, (list, tuple)):
            dtype = kwargs.get("dtype")
            model, first_tokenizer = load_ensemble(model, **({} if dtype is None else {"dtype": dtype}))
            tokenizer = first_tokenizer if tokenizer is None else tokenizer
        if tokenizer is None:
            raise ValueError(f"{type(self).__name__} needs the model folder's tokenizer: use ner_pipeline(folder)")
        super().__init__(model, tokenizer, *args, **kwargs)
        self.decoder = WordDecoder.from_config(self.model.config, decoding)
        self.max_seq_length = max_seq_length
        self.stride = stride

    def _sanitize_parameters(self, **kwargs: Any) -> tuple[dict, dict, dict]:
        if kwargs:
            raise TypeError(
                f"{type(self).__name__} takes no call options, got {', '.join(sorted(kwargs))}; "
                "decoding, max_seq_length and stride are set when it is built"
            )
        return {}, {}, {}

    def preprocess(self, text: str) -> Any:
        """The windows of `text`, one model input each (a generator, as `ChunkPipeline` takes them)."""
        if not isinstance(text, str):
            raise TypeError(f"{type(self).__name__} takes a text or a list of texts, got {type(text).__name__}")
        sentence = text_sentence(text, self.tokenizer)
        with progress_bars_off():
            windows = tagging_windows(
                [sentence.tokens],
                self.tokenizer,
                self.model.config.label2id,
                max_seq_length=self.max_seq_length,
                stride=self.stride,
            )
        last = len(windows.lengths) - 1
        for row, features in enumerate(windows.inputs):
            words = np.flatnonzero(windows.rows == row)
            yield {
                **{name: torch.tensor([values]) for name, values in features.items()},
                "word_index": words.tolist(),
                "word_position": windows.positions[words].tolist(),
                "sentence": sentence if row == 0 else None,
                "is_last": row == last,
            }

    def _forward(self, model_inputs: dict[str, Any]) -> dict[str, Any]:
        """A batch of windows -> `probabilities` `[windows, sub-tokens, labels]` (the softmax of the
        logits, in float32), with what each window carries (`WINDOW_KEYS`, `is_last`) passed on."""
        carried = {key: model_inputs.pop(key) for key in (*WINDOW_KEYS, "is_last")}
        logits = self.model(**model_inputs).logits
        return {"probabilities": logits.float().softmax(-1), **carried}

    def postprocess(self, window_outputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Every window of one text -> its entities: each word's probabilities from its window, decoded."""
        sentence = window_outputs[0]["sentence"]
        probabilities = np.zeros((len(sentence.tokens), len(self.decoder.labels)), dtype=np.float32)
        for output in window_outputs:
            probabilities[output["word_index"]] = output["probabilities"][0, output["word_position"]].numpy()
        (tagged,) = self.decoder.tag([sentence], probabilities)
        return [entity_record(entity) for entity in tagged.entities]


def ner_pipeline(model_dir: str | os.PathLike | Sequence[str | os.PathLike], **kwargs: Any) -> NerPipeline:
    """`transformers.pipeline(PIPELINE_TASK, model=model_dir, **kwargs)` for a folder written by
    `train_ner.py`, after its checks (`load_tokenizer`): the entities of `Tagger.tag_text`. A list of
    folders is a seed ensemble: the entities of `Tagger.from_folders(model_dir).tag_text`.

    `kwargs`: any pipeline's (`device`, `dtype`, `batch_size`, ...) and `NerPipeline`'s (`decoding`,
    `max_seq_length`, `stride`)."""
    if isinstance(model_dir, (str, os.PathLike)):
        return pipeline(PIPELINE_TASK, model=str(model_dir), tokenizer=load_tokenizer(model_dir), **kwargs)
    return pipeline(PIPELINE_TASK, model=list(model_dir), **kwargs)


PIPELINE_REGISTRY.register_pipeline(
    PIPELINE_TASK, pipeline_class=NerPipeline, pt_model=AutoModelForTokenClassification, type="text"
)
