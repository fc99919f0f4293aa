"""What tagging takes and gives: a `Sentence` of words, a `TaggedSentence` with its tags, and its `Entity`s."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np
from seqeval.metrics.sequence_labeling import get_entities


@dataclass
class Sentence:
    """Words to tag; for raw text also the line and each word's character offsets `[start, end)` in it;
    for JSON input the record's other fields (an `id`, ...), written back beside the tags."""

    tokens: list[str]
    text: str | None = None
    offsets: list[tuple[int, int]] | None = None
    fields: dict[str, Any] | None = None


@dataclass
class Entity:
    """An entity over words `[start, end)`; `probability` is the mean of its words' tag probabilities.

    `char_start`/`char_end`: its characters `[char_start, char_end)` in the raw text line (None
    for pre-split words); `text`: those characters, or its words joined by spaces."""

    type: str
    start: int
    end: int
    text: str
    probability: float
    char_start: int | None = None
    char_end: int | None = None

    def as_dict(self) -> dict[str, Any]:
        record = asdict(self)
        if self.char_start is None:
            del record["char_start"], record["char_end"]
        return record


@dataclass
class TaggedSentence:
    """A sentence with one tag per word, the probability of each tag, and its entities (and the input
    record's other `fields`)."""

    tokens: list[str]
    tags: list[str]
    probabilities: list[float]
    entities: list[Entity] = field(default_factory=list)
    text: str | None = None
    fields: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        """The JSON Lines record: the input's other `fields` first, then `text` (raw text only),
        `tokens`, `tags` and `entities` (these replace input fields of the same name)."""
        record: dict[str, Any] = dict(self.fields or {})
        if self.text is not None:
            record["text"] = self.text
        record.update(tokens=self.tokens, tags=self.tags, entities=[entity.as_dict() for entity in self.entities])
        return record


def entities_of(sentence: Sentence, tags: Sequence[str], probabilities: Sequence[float]) -> list[Entity]:
    """The entities of one tagged sentence, chunked as conlleval (and evaluation) chunk them."""
    entities = []
    for entity_type, first, last in get_entities(list(tags)):
        end = last + 1
        if sentence.offsets is not None:
            char_start, char_end = sentence.offsets[first][0], sentence.offsets[last][1]
            text = sentence.text[char_start:char_end]
        else:
            char_start = char_end = None
            text = " ".join(sentence.tokens[first:end])
        probability = float(np.mean(probabilities[first:end]))
        entities.append(Entity(entity_type, first, end, text, probability, char_start, char_end))
    return entities


class SentenceTagger(Protocol):
    """What tags sentences: `tagger.Tagger`, whatever its backend (torch or ONNX Runtime)."""

    def tag(self, sentences: Sequence[Sentence]) -> list[TaggedSentence]: ...
