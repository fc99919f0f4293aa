"""The page of tagged text: every sentence with its entities highlighted (`ner-predict --output x.html`).

`html_page_start` + `write_html` (per chunk of tagged sentences) + `HTML_PAGE_END`: the text of
every sentence, one paragraph per input sentence, each entity a `<mark>` coloured by its type,
with the type and the model's probability of the entity's tags on hover (`title`), and a legend.
Written in pieces, so that the predict command can stream it. The frame is `utils.html_page`'s;
an evaluation's error page is `evaluation.html_report`.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import IO

from ner_imbalance.inference.sentences import TaggedSentence
from ner_imbalance.utils.html_page import page_start

TYPE_COLOURS = (
    "#ffd166", "#8ecae6", "#b8e0a8", "#f4a6c6", "#cdb4db", "#ffb4a2",
    "#a0e7e5", "#e9c46a", "#bde0fe", "#d4e09b", "#f7c59f", "#c9ada7",
)  # fmt: skip
"""Background of the entities of the i-th type (sorted), cycling."""


def _css_string(text: str) -> str:
    """`text` as a quoted CSS string: every character but letters, digits, `-` and `_` escaped."""
    return '"' + "".join(char if char.isalnum() or char in "-_" else f"\\{ord(char):x} " for char in text) + '"'


def _type_colour(index: int) -> str:
    return TYPE_COLOURS[index % len(TYPE_COLOURS)]


def html_page_start(types: Sequence[str], title: str) -> str:
    """The head of the tagged-text page and its legend: one colour per entity type (in `types` order)."""
    rules = "\n".join(
        f"mark[data-label={_css_string(entity_type)}] {{ background: {_type_colour(index)}; }}"
        for index, entity_type in enumerate(types)
    )
    legend = "".join(
        f'<span style="background: {_type_colour(index)}">{html.escape(entity_type)}</span>'
        for index, entity_type in enumerate(types)
    )
    return (
        page_start(title, f"p.s {{ margin: .3em 0; }}\n{rules}")
        + f'<p class="legend">Entity types: {legend} (hover over an entity for its type and probability)</p>\n'
        f'<div data-types="{html.escape(" ".join(types))}">\n'
    )


HTML_PAGE_END = "</div>\n</body>\n</html>\n"


def write_html(sentences: Sequence[TaggedSentence], handle: IO[str]) -> None:
    """One paragraph per sentence (an empty one for a sentence without words), each entity a `<mark>`
    whose `data-label` (its type) picks its colour from `html_page_start`'s rules."""
    for sentence in sentences:
        handle.write(f'<p class="s">{_highlighted(sentence)}</p>\n')


def _highlighted(sentence: TaggedSentence) -> str:
    """The sentence's text (raw text with its spacing, else words joined by spaces), entities marked."""
    has_offsets = sentence.text is not None and all(entity.char_start is not None for entity in sentence.entities)
    pieces, cursor = [], 0
    for entity in sentence.entities:
        if has_offsets:
            start, end, before = entity.char_start, entity.char_end, sentence.text[cursor : entity.char_start]
        else:
            start, end = entity.start, entity.end
            before = " ".join(sentence.tokens[cursor:start]) + (" " if start > cursor else "")
        pieces.append(
            f'{html.escape(before)}<mark data-label="{html.escape(entity.type)}" '
            f'title="{html.escape(entity.type)}, probability {entity.probability:.3f}">'
            f"{html.escape(entity.text)}</mark>"
        )
        cursor = end
        if not has_offsets and end < len(sentence.tokens):
            pieces.append(" ")
    rest = sentence.text[cursor:] if has_offsets else " ".join(sentence.tokens[cursor:])
    return "".join(pieces) + html.escape(rest)
