"""An evaluation's errors as a page (`ner-evaluate --html`): the counts `--errors` prints (the
SemEval-2013 schemes and the outcomes of every type) on top, then per sentence the gold and the
predicted entities side by side, each coloured by its outcome (`error_analysis.OUTCOMES`), and a
filter by outcome and type (a few lines of plain JavaScript). The frame is `utils.html_page`'s.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from ner_imbalance.evaluation.error_analysis import OUTCOMES, SCHEME_COUNTS, ErrorAnalysis
from ner_imbalance.evaluation.scores import Span
from ner_imbalance.utils.html_page import page_start

OUTCOME_COLOURS = {
    "correct": "#b7e4c7",
    "wrong_type": "#ffd166",
    "wrong_boundary": "#8ecae6",
    "both_wrong": "#cdb4db",
    "missed": "#f4a6a6",
    "spurious": "#f9c784",
}

_REPORT_SCRIPT = """
const kind = document.getElementById("kind"), type = document.getElementById("type");
const rows = Array.from(document.querySelectorAll("tr.sentence"));
function applyFilter() {
  let shown = 0;
  for (const row of rows) {
    const visible = row.dataset.outcomes.split(" ").some((pair) => {
      const [k, t] = pair.split(":");
      return (kind.value === "" || k === kind.value) && (type.value === "" || t === type.value);
    });
    row.hidden = !visible;
    shown += visible;
  }
  document.getElementById("shown").textContent = shown;
}
const wanted = new URLSearchParams(location.hash.slice(1));
kind.value = wanted.get("kind") || "";
type.value = wanted.get("type") || "";
kind.addEventListener("change", applyFilter);
type.addEventListener("change", applyFilter);
applyFilter();
document.body.dataset.ready = "true";
"""


def error_report_html(analysis: ErrorAnalysis, title: str) -> str:
    """The `ner-evaluate --html` page of `analysis` (see the module docstring).

    Every sentence with an entity (gold or predicted) is a row; its `data-outcomes` lists
    `kind:type` of each outcome, which the filter matches (the page opens filtered when its
    address ends in `#kind=missed&type=person`, say). Each gold and each predicted entity is one
    `<mark class="k-KIND">`, so the marks of a kind count its entities, as `--errors` does.
    """
    counts = analysis.counts()
    kind_of_gold: dict[tuple[int, Span], str] = {}
    kind_of_pred: dict[tuple[int, Span], str] = {}
    outcomes_of: dict[int, list[str]] = {}
    for outcome in analysis.outcomes:
        if outcome.gold is not None:
            kind_of_gold[outcome.sentence, outcome.gold] = outcome.kind
        if outcome.pred is not None:
            kind_of_pred[outcome.sentence, outcome.pred] = outcome.kind
        outcomes_of.setdefault(outcome.sentence, []).append(f"{outcome.kind}:{outcome.type}")
    rows = []
    for number in sorted(outcomes_of):
        words = analysis.tokens[number]
        gold = _marked_words(words, analysis.gold_entities[number], number, kind_of_gold, "gold")
        pred = _marked_words(words, analysis.pred_entities[number], number, kind_of_pred, "predicted")
        rows.append(
            f'<tr class="sentence" data-outcomes="{html.escape(" ".join(outcomes_of[number]))}">'
            f'<td class="n">{number + 1}</td><td>{gold}</td><td>{pred}</td></tr>'
        )
    css = "\n".join(f"mark.k-{kind} {{ background: {colour}; }}" for kind, colour in OUTCOME_COLOURS.items())
    legend = "".join(
        f'<span style="background: {OUTCOME_COLOURS[kind]}">{kind.replace("_", " ")}</span>' for kind in OUTCOMES
    )
    options = "".join(f'<option value="{kind}">{kind.replace("_", " ")}</option>' for kind in OUTCOMES)
    type_options = "".join(f"<option>{html.escape(name)}</option>" for name in analysis.types)
    return (
        page_start(title, css)
        + f"<h2>Entity outcomes by type</h2>\n<p>gold type; spurious: predicted type</p>\n{_outcome_table(counts)}\n"
        f"<h2>SemEval-2013 schemes (nervaluate)</h2>\n{_scheme_table(analysis)}\n"
        f'<h2>Sentences</h2>\n<p class="legend">Outcomes: {legend}</p>\n'
        f'<p><label>outcome <select id="kind"><option value="">all</option>{options}</select></label> '
        f'<label>type <select id="type"><option value="">all</option>{type_options}</select></label> '
        f'<span id="shown">{len(rows)}</span> of {len(rows)} sentences with entities shown</p>\n'
        f'<table id="sentences">\n<tr><th>#</th><th>gold</th><th>predicted</th></tr>\n'
        + "\n".join(rows)
        + f"\n</table>\n<script>{_REPORT_SCRIPT}</script>\n</body>\n</html>\n"
    )


def _marked_words(
    words: Sequence[str], spans: Sequence[Span], sentence: int, kind_of: dict[tuple[int, Span], str], side: str
) -> str:
    """The words joined by spaces, each entity of `spans` a `<mark>` coloured by its outcome."""
    pieces, cursor = [], 0
    for span in spans:
        pieces += [html.escape(word) for word in words[cursor : span.start]]
        kind = kind_of[sentence, span]
        text = html.escape(" ".join(words[span.start : span.end]))
        pieces.append(
            f'<mark class="k-{kind}" data-label="{html.escape(span.type)}" '
            f'title="{side} {html.escape(span.type)}: {kind.replace("_", " ")}">{text}</mark>'
        )
        cursor = span.end
    pieces += [html.escape(word) for word in words[cursor:]]
    return " ".join(pieces)


def _outcome_table(counts: dict[str, dict[str, int]]) -> str:
    header = "<tr><th>type</th>" + "".join(f"<th>{kind}</th>" for kind in OUTCOMES) + "</tr>"
    body = "".join(
        f"<tr><td>{html.escape(name)}</td>" + "".join(f'<td class="n">{row[kind]}</td>' for kind in OUTCOMES) + "</tr>"
        for name, row in counts.items()
    )
    return f'<table id="outcomes">{header}{body}</table>'


def _scheme_table(analysis: ErrorAnalysis) -> str:
    """The schemes as `format_error_report` prints them: five counts, precision and recall in %, F1 x 100."""
    names = SCHEME_COUNTS[:5]
    header = "<tr><th>scheme</th>" + "".join(f"<th>{name}</th>" for name in names)
    header += "<th>precision</th><th>recall</th><th>F1</th></tr>"
    body = "".join(
        f"<tr><td>{name}</td>"
        + "".join(f'<td class="n">{scores[count]}</td>' for count in names)
        + f'<td class="n">{scores["precision"]:.2%}</td><td class="n">{scores["recall"]:.2%}</td>'
        f'<td class="n">{100 * scores["f1"]:.2f}</td></tr>'
        for name, scores in analysis.schemes.items()
    )
    return f'<table id="schemes">{header}{body}</table>'
