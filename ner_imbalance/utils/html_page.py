"""The frame every page of the package shares: one self-contained HTML file (inline CSS, no network
fetch), its head with the common style, and the title as the first heading."""

from __future__ import annotations

import html

BASE_CSS = """
body { font: 15px/1.6 system-ui, sans-serif; margin: 1.5em auto; max-width: 72em; padding: 0 1em; color: #222; }
mark { padding: 0 .2em; border-radius: .25em; }
mark::after { content: attr(data-label); font-size: .65em; font-weight: 600; margin-left: .3em; vertical-align: .15em; }
.legend span { display: inline-block; margin: 0 .6em .3em 0; padding: 0 .4em; border-radius: .25em; }
table { border-collapse: collapse; margin-bottom: 1em; }
th, td { border: 1px solid #ddd; padding: .2em .5em; vertical-align: top; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
#sentences { width: 100%; table-layout: fixed; }
#sentences th:first-child { width: 3em; }
"""


def page_start(title: str, css: str) -> str:
    """The page up to and including its `<h1>`: `BASE_CSS` and then `css` in its `<style>`, `title` escaped."""
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{html.escape(title)}</title>\n'
        f"<style>{BASE_CSS}{css}\n</style>\n</head>\n<body>\n<h1>{html.escape(title)}</h1>\n"
    )
