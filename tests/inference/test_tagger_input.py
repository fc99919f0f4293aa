"""`Tagger.tag` takes lists of words and `Tagger.tag_text` lists of texts: a string in the wrong place is a
TypeError that names the right method, never a sentence tagged character by character."""

from __future__ import annotations

import pytest
from tiny_models import save_tiny_tagger

from ner_imbalance.inference import Sentence, Tagger

LABELS = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]


@pytest.fixture(scope="module")
def tagger(tmp_path_factory) -> Tagger:
    folder = save_tiny_tagger(tmp_path_factory.mktemp("tagger_input"), LABELS, seed=3)
    return Tagger.from_folder(folder, device="cpu")


@pytest.mark.parametrize(
    "sentences",
    ["Taylor Swift played in New York", ["Taylor Swift played in New York"], ["Taylor", "Swift"], [["Paris"], "Rome"]],
    ids=["text", "list_of_texts", "words_not_in_a_list", "one_string_among_sentences"],
)
def test_tag_refuses_a_string_in_place_of_a_list_of_words(tagger, sentences):
    with pytest.raises(TypeError, match=r"lists of words.*tag_text"):
        tagger.tag(sentences)


def test_tag_takes_word_lists_and_sentences_and_tag_text_takes_texts(tagger):
    words = ["Taylor", "Swift", "played", "in", "New", "York"]
    (from_words,) = tagger.tag([words])
    (from_sentence,) = tagger.tag([Sentence(words)])
    (from_text,) = tagger.tag_text(["Taylor Swift played in New York"])
    assert from_words.tokens == from_sentence.tokens == from_text.tokens == words
    assert from_words.tags == from_sentence.tags == from_text.tags
    with pytest.raises(TypeError, match="list of texts"):
        tagger.tag_text("Taylor Swift played in New York")
