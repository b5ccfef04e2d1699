"""Showing text that candidates, models or users wrote, as text and only text.

Candidate stderr, evaluation feedback, LLM replies, program code, run names and messages that
echo user input reach the terminal, the HTML report and the live page. Two things in them must
not act: Rich markup (`[/]` raises MarkupError, `[link=...]` makes a link) and control
characters (ESC and CSI start terminal escape sequences that move the cursor, retitle the
window, write OSC 8 links or the clipboard; CR and BS overwrite what was printed; BEL rings).
Rich drops BEL but passes ESC through, so every such string goes through `visible` (and, when it
is printed with markup on, `markup_safe`). JSON output needs nothing more: `json.dumps` escapes
every control character (and, with ensure_ascii, every non-ASCII one).
"""

from __future__ import annotations

import re

from rich.markup import escape
from rich.text import Span, Text

# C0 controls but newline and tab, DEL, the C1 block (U+0080-U+009F: 0x9B is a one-byte CSI),
# and the format characters that reorder or hide text (bidirectional overrides and isolates,
# zero-width joiners are left: they are part of ordinary emoji), line and paragraph separators.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_CONTROL_ONE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _show(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: str, *, one_line: bool = False) -> str:
    """`text` with every control character written out (ESC as `\\x1b`); newlines and tabs kept
    unless `one_line`. Plain text otherwise unchanged, so it is cheap on ordinary output."""
    pattern = _CONTROL_ONE_LINE if one_line else _CONTROL
    return pattern.sub(_show, text) if pattern.search(text) else text


def markup_safe(text: str, *, one_line: bool = False) -> str:
    """`visible(text)` with Rich markup escaped: for strings printed with markup on."""
    return escape(visible(text, one_line=one_line))


def shown(text: str, style: str = "", *, one_line: bool = False) -> Text:
    """A Rich Text of `visible(text)`: never parsed as markup."""
    return Text(visible(text, one_line=one_line), style=style)


def visible_text(text: Text) -> Text:
    """A styled Text with `visible` applied to its characters, styles kept (for views built by
    code that appended candidate text to a Text as it was)."""
    if not _CONTROL.search(text.plain):
        return text
    cuts = sorted({offset for span in text.spans for offset in (span.start, span.end)} - {0, len(text)})
    result = Text(style=text.style, end=text.end, justify=text.justify, no_wrap=text.no_wrap)
    for piece in text.divide(cuts):
        plain = visible(piece.plain)
        result.append_text(Text(plain, style=piece.style, spans=[Span(0, len(plain), s.style) for s in piece.spans]))
    return result
