"""Text from input files shown as text: one escaping function per output format.

County and prefecture names, ids, the instance's title and currency, pool ids,
stress-scenario names and diagnosis lines come from files a user writes (or
receives), so the report treats every string as plain text:

- HTML: `escape_html`, every text node and attribute value (``& < > " '``).
- Markdown: `escape_markdown`, every piece of text the renderer writes. No
  input can open a tag, an entity, a link, an image, a table cell, emphasis,
  code, a heading or list, or maths: ``& < >`` become entities, Markdown's
  syntax characters are backslash-escaped, line breaks become spaces. A
  renderer shows the text as it was (rendering ignores leading and trailing
  spaces, as it always does).
- Spreadsheets (CSV): `escape_spreadsheet_cell`, every text cell: one that
  starts like a formula gets a leading apostrophe (OWASP's advice against CSV
  injection), so a spreadsheet shows it as text instead of evaluating it.
- Figures (matplotlib): `PLAIN_FIGURE_TEXT`, the settings every figure is
  built and drawn under: no mathtext (``$\\frac{$`` in a name would be
  parsed, and fail) and no LaTeX.
"""

from __future__ import annotations

import html
import re

MARKDOWN_BACKSLASHED = frozenset("\\`*[]|$#~{}")
"""Escaped with a backslash everywhere: escapes themselves, code spans,
emphasis, links and images (``[``, ``]``), table cells, maths (``$``, as
GitHub renders it), closing heading marks, strikethrough and attribute lists
(``{...}``). ``(``, ``)`` and ``!`` only act after ``]`` and need nothing."""
MARKDOWN_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
"""HTML tags, autolinks, entities and block quotes: entities, which every
Markdown renderer shows as the character (some do not honour ``\\<``)."""
BLOCK_MARKER = re.compile(r"[-+]|\d{1,9}[.)](?=[ \t]|$)")
"""What turns the start of a paragraph or list item into a list item or a
rule (``---``); the others (``#``, ``>``, ``*``, ``_``, fences) are escaped anyway."""
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
"""First characters that make a spreadsheet read a cell as a formula."""
PLAIN_FIGURE_TEXT = {"text.usetex": False, "text.parse_math": False}
"""matplotlib settings under which text is drawn as written."""


def escape_html(text: str) -> str:
    """Text for an HTML text node or a quoted attribute value."""
    return html.escape(str(text), quote=True)


def escape_markdown(text: str, *, block_start: bool = False) -> str:
    """Text for Markdown, shown as written wherever it is placed inline (a
    heading, a table cell, emphasis, an image's alt text). `block_start`:
    the text starts a paragraph or a list item, where a leading ``-``, ``+``
    or ``1.`` would start a list or a rule; that mark is escaped too.

    An underscore between two letters or digits (``instance_sha256``) is left
    as it is: it cannot open or close emphasis there."""
    text = " ".join(str(text).splitlines()).strip()
    out = []
    last = len(text) - 1
    for i, ch in enumerate(text):
        if ch in MARKDOWN_ENTITIES:
            out.append(MARKDOWN_ENTITIES[ch])
        elif ch in MARKDOWN_BACKSLASHED:
            out.append("\\" + ch)
        elif ch == "_" and not (0 < i < last and text[i - 1].isalnum() and text[i + 1].isalnum()):
            out.append("\\_")
        else:
            out.append(ch)
    escaped = "".join(out)
    marker = BLOCK_MARKER.match(escaped) if block_start else None
    if marker:
        cut = marker.end() - 1
        escaped = escaped[:cut] + "\\" + escaped[cut:]
    return escaped


def escape_spreadsheet_cell(value):
    """A text cell that would start a formula, prefixed with an apostrophe;
    anything else (numbers included) as it is."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


JSON_IN_HTML = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
"""Characters that could end or confuse a <script> element holding JSON, as JSON escapes (same value)."""


def escape_json_for_html(text: str) -> str:
    """JSON text for a ``<script type="application/json">`` element: no ``</script>``, comment or
    entity can be formed, and JSON.parse reads the same value."""
    return "".join(JSON_IN_HTML.get(ch, ch) for ch in text)
