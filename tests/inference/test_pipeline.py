"""`ner_pipeline` and `transformers.pipeline("ner-imbalance")`: the entities of `Tagger.tag_text` and `ner-predict`.

The folder is a tiny random BERT whose classifier is scaled and carries a folded calibration bias, with
Viterbi recorded as its decoding (as `train_ner.py` records it): entities of both types appear, and Viterbi
changes tags that argmax gives.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers
from tiny_models import save_tiny_tagger
from transformers import AutoModelForTokenClassification

import ner_imbalance
from ner_imbalance.calibration import fold_bias_into_classifier
from ner_imbalance.cli import predict
from ner_imbalance.constants import DECODING_CONFIG_KEY, PIPELINE_TASK, VITERBI
from ner_imbalance.inference import NerPipeline, Tagger, split_words, tagging_windows
from ner_imbalance.training.model_card import usage_note

LABELS = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
WINDOWS = {"max_seq_length": 8, "stride": 2}
# capitals, two spaces, punctuation and words outside the tiny vocabulary (one sub-token per character)
TEXTS = [
    "John  visited Paris and London today, with Mary!",
    "The city of Xyzzy and Qrst Uvw , abcd",
    "",
    "Mary",
]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    folder = save_tiny_tagger(tmp_path_factory.mktemp("ner_pipeline"), LABELS, seed=5)
    model = AutoModelForTokenClassification.from_pretrained(folder)
    with torch.no_grad():
        model.classifier.weight.mul_(10.0)  # word-dependent tags, not one tag everywhere
    fold_bias_into_classifier(model, [1.0, 0.0, 0.0, 0.0, 0.0])
    setattr(model.config, DECODING_CONFIG_KEY, VITERBI)
    model.save_pretrained(folder)
    return folder


def pipeline_form(entity: dict) -> dict:
    """An entity as `Entity.as_dict` and `ner-predict`'s JSON Lines give it, in the pipeline's form."""
    return {
        "entity_group": entity["type"],
        "score": pytest.approx(entity["probability"], rel=1e-5),
        "word": entity["text"],
        "start": entity["char_start"],
        "end": entity["char_end"],
    }


def tagger_entities(tagger: Tagger, texts: list[str]) -> list[list[dict]]:
    """`Tagger.tag_text`'s entities in the pipeline's form."""
    return [[pipeline_form(entity.as_dict()) for entity in sentence.entities] for sentence in tagger.tag_text(texts)]


def test_entities_are_the_taggers_under_the_folders_decoding(model_dir):
    ner = ner_imbalance.ner_pipeline(model_dir, device="cpu", **WINDOWS)
    assert isinstance(ner, NerPipeline) and ner.decoder.method == VITERBI
    expected = tagger_entities(Tagger.from_folder(model_dir, device="cpu", **WINDOWS), TEXTS)
    assert sum(map(len, expected)) >= 4
    assert {entity["entity_group"] for entities in expected for entity in entities} == {"LOC", "PER"}
    assert ner(TEXTS) == expected
    assert ner(TEXTS[0]) == expected[0]
    assert ner(TEXTS, batch_size=3) == expected, "batched windows give the same entities"
    argmax = ner_imbalance.ner_pipeline(model_dir, device="cpu", decoding="argmax", **WINDOWS)
    by_argmax = tagger_entities(Tagger.from_folder(model_dir, device="cpu", decoding="argmax", **WINDOWS), TEXTS)
    assert argmax(TEXTS) == by_argmax
    assert by_argmax != expected, "the folder's Viterbi decoding changes entities here"


def test_offsets_give_the_exact_substring_on_word_boundaries(model_dir):
    ner = ner_imbalance.ner_pipeline(model_dir, device="cpu", **WINDOWS)
    for text, entities in zip(TEXTS, ner(TEXTS)):
        words, offsets = split_words(text, ner.tokenizer)
        starts, ends = {start for start, _ in offsets}, {end for _, end in offsets}
        for entity in entities:
            assert entity["word"] == text[entity["start"] : entity["end"]]
            assert entity["start"] in starts and entity["end"] in ends
            assert 0.0 < entity["score"] <= 1.0


@pytest.mark.parametrize("windows", [WINDOWS, {}], ids=["8_sub_tokens", "default_128"])
def test_text_beyond_a_window_is_windowed_not_truncated(model_dir, windows):
    """A text of many windows (with the default 128, longer than the tiny model's 128 positions):
    entities are found after the first window, and they are the Tagger's."""
    text = " ".join(["John visited Paris and London today with Mary , the city of abcd ."] * 10)  # 172 sub-tokens
    ner = ner_imbalance.ner_pipeline(model_dir, device="cpu", **windows)
    entities = ner(text)
    assert entities == tagger_entities(Tagger.from_folder(model_dir, device="cpu", **windows), [text])[0]
    words, offsets = split_words(text, ner.tokenizer)
    found = tagging_windows([words], ner.tokenizer, ner.model.config.label2id, **windows)
    assert len(found.lengths) >= 2
    end_of_first_window = offsets[np.flatnonzero(found.rows == 0)[-1]][1]
    assert any(entity["start"] > end_of_first_window for entity in entities)
    assert max(entity["end"] for entity in entities) > len(text) - 80, "entities up to the text's end"


def test_entities_are_the_predict_commands(model_dir, tmp_path):
    source, output = tmp_path / "texts.txt", tmp_path / "tagged.jsonl"
    source.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    flags = ["--max_seq_length", "8", "--stride", "2", "--device", "cpu", "--no_progress"]
    assert predict.main(["--model", str(model_dir), "--input", str(source), "--output", str(output), *flags]) == 0
    records = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    from_command = [[pipeline_form(entity) for entity in record["entities"]] for record in records]
    assert ner_imbalance.ner_pipeline(model_dir, device="cpu", **WINDOWS)(TEXTS) == from_command


def test_transformers_pipeline_builds_it_by_task_name(model_dir):
    ner = transformers.pipeline(PIPELINE_TASK, model=str(model_dir), device="cpu", **WINDOWS)
    assert isinstance(ner, NerPipeline)
    assert ner(TEXTS) == ner_imbalance.ner_pipeline(model_dir, device="cpu", **WINDOWS)(TEXTS)


def test_the_task_is_registered_by_the_inference_package_not_by_the_root():
    code = (
        "import sys, ner_imbalance\n"
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'eager import'\n"
        "from transformers.pipelines import PIPELINE_REGISTRY\n"
        f"assert {PIPELINE_TASK!r} not in PIPELINE_REGISTRY.get_supported_tasks()\n"
        "assert callable(ner_imbalance.ner_pipeline)\n"
        f"assert {PIPELINE_TASK!r} in PIPELINE_REGISTRY.get_supported_tasks()\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_bad_inputs_and_options_are_refused(model_dir, tmp_path):
    ner = ner_imbalance.ner_pipeline(model_dir, device="cpu", **WINDOWS)
    with pytest.raises(TypeError, match="a text or a list of texts"):
        ner([["John", "visited"]])
    with pytest.raises(TypeError, match="aggregation_strategy"):
        ner("John", aggregation_strategy="simple")
    with pytest.raises(ValueError, match="decoding must be one of"):
        ner_imbalance.ner_pipeline(model_dir, device="cpu", decoding="beam")
    with pytest.raises(FileNotFoundError, match="no such model folder"):
        ner_imbalance.ner_pipeline(tmp_path / "nowhere")


@pytest.mark.parametrize("decoding", ["argmax", VITERBI])
def test_the_model_card_shows_both_entry_points(decoding):
    note = usage_note(decoding)
    assert "ner_imbalance.ner_pipeline(<this folder>)" in note
    assert f'transformers.pipeline("{PIPELINE_TASK}", model=<this folder>)' in note
    assert f"decode with `{decoding}`" in note
