"""SEARCH/REPLACE blocks (aider's "diff" format): the model quotes lines of the parent and what
should stand in their place.

    <<<<<<< SEARCH
    score = -remaining
    =======
    score = -remaining ** 2
    >>>>>>> REPLACE

Matching is a ladder of ever more tolerant but still exact rules, tried in order, and the first
rung that finds the SEARCH text decides: (1) exact lines; (2) the same lines shifted by a uniform
indentation (the replacement is shifted alike); (3) lines equal after trimming surrounding
whitespace and blank edges; (4) `...` lines in SEARCH and REPLACE elide unchanged code between
chunks matched in order. There is no similarity-based auto-apply: a near miss is an error whose
message shows the closest real lines. More than one match on the deciding rung is an ambiguity,
reported with the line numbers, never resolved by guessing. Every block must apply, inside the
EVOLVE-BLOCK regions, or no child is made at all.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass

from agent.edit_formats.base import EditError, EditFormat, evolvable_ranges, in_blocks
from agent.evolve_blocks import END, START

HEAD = re.compile(r"^\s*<{5,9}\s*SEARCH\b.*$", re.IGNORECASE)
DIVIDER = re.compile(r"^\s*={5,9}\s*$")
TAIL = re.compile(r"^\s*>{5,9}\s*REPLACE\b.*$", re.IGNORECASE)
FENCE = re.compile(r"^\s*```[\w+-]*\s*$")
ELISION = "..."


@dataclass(frozen=True)
class Block:
    number: int
    search: list[str]
    replace: list[str]


def parse_blocks(reply: str) -> list[Block]:
    """The blocks of a reply, or EditError naming the block and what is wrong with it."""
    blocks: list[Block] = []
    state, search, replace = "outside", [], []  # type: tuple[str, list[str], list[str]]
    for line in reply.splitlines():
        number = len(blocks) + 1
        if state == "outside":
            if HEAD.match(line):
                state, search, replace = "search", [], []
            elif DIVIDER.match(line) or TAIL.match(line):
                raise EditError(
                    "malformed_block",
                    f"block {number}: found `{line.strip()}` before any `<<<<<<< SEARCH` line; "
                    "each block starts with `<<<<<<< SEARCH`",
                )
        elif state == "search":
            if DIVIDER.match(line):
                state = "replace"
            elif HEAD.match(line) or TAIL.match(line):
                raise EditError(
                    "malformed_block",
                    f"block {number}: `{line.strip()}` came before its `=======` divider; a block is "
                    "`<<<<<<< SEARCH`, the old lines, `=======`, the new lines, `>>>>>>> REPLACE`",
                )
            else:
                search.append(line)
        elif TAIL.match(line):
            blocks.append(Block(number, _unfence(search), _unfence(replace)))
            state = "outside"
        elif HEAD.match(line) or DIVIDER.match(line):
            raise EditError(
                "malformed_block",
                f"block {number}: `{line.strip()}` came before its `>>>>>>> REPLACE` line; close each "
                "block with `>>>>>>> REPLACE` before starting the next",
            )
        else:
            replace.append(line)
    if state != "outside":
        missing = "`=======` and `>>>>>>> REPLACE`" if state == "search" else "`>>>>>>> REPLACE`"
        raise EditError(
            "malformed_block", f"block {len(blocks) + 1} is cut off: it has no {missing} (was the reply truncated?)"
        )
    if not blocks:
        raise EditError(
            "no_edit",
            "the reply has no SEARCH/REPLACE block; write each change as `<<<<<<< SEARCH`, the exact "
            "lines to change, `=======`, their replacement, `>>>>>>> REPLACE`",
        )
    return blocks


def _unfence(lines: list[str]) -> list[str]:
    """Drop a code fence a model put inside a section (```python ... ```)."""
    if lines and FENCE.match(lines[0]):
        lines = lines[1:]
    if lines and FENCE.match(lines[-1]):
        lines = lines[:-1]
    return lines


Reindent = Callable[[list[str]], list[str]]


@dataclass(frozen=True)
class Match:
    start: int
    """0-based index of the first matched line."""
    length: int
    reindent: Reindent


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _shift(delta: int, char: str) -> Reindent:
    """Move non-blank lines right by `delta` copies of `char` (left when negative)."""

    def apply(lines: list[str]) -> list[str]:
        if delta >= 0:
            return [char * delta + line if line.strip() else line for line in lines]
        return [line[min(-delta, len(_indent(line))) :] for line in lines]

    return apply


def _indent_char(lines: list[str]) -> str:
    """Tab when the matched code indents with tabs, else space."""
    return "\t" if any(line.startswith("\t") for line in lines) else " "


def _exact(lines: list[str], search: list[str]) -> list[Match]:
    n = len(search)
    return [Match(i, n, list) for i in range(len(lines) - n + 1) if lines[i : i + n] == search]


def _indentation(lines: list[str], search: list[str]) -> list[Match]:
    n, found = len(search), []
    for i in range(len(lines) - n + 1):
        deltas = set()
        for have, want in zip(lines[i : i + n], search, strict=True):
            if not have.strip() and not want.strip():
                continue
            if have.lstrip() != want.lstrip():
                break
            deltas.add(len(_indent(have)) - len(_indent(want)))
        else:
            if len(deltas) == 1:
                found.append(Match(i, n, _shift(deltas.pop(), _indent_char(lines[i : i + n]))))
    return found


def _trimmed(lines: list[str], search: list[str]) -> list[Match]:
    first = next((k for k, line in enumerate(search) if line.strip()), None)
    if first is None:
        return []
    last = max(k for k, line in enumerate(search) if line.strip())
    core = [line.strip() for line in search[first : last + 1]]
    n, found = len(core), []
    for i in range(len(lines) - n + 1):
        if [line.strip() for line in lines[i : i + n]] == core:
            found.append(Match(i, n, _fit_to(lines[i], search[first], _indent_char(lines[i : i + n]))))
    return found


def _fit_to(target: str, quoted: str, char: str) -> Reindent:
    """A replacement whose first line already sits at the target's indentation is kept as it is
    (the model got REPLACE right and SEARCH sloppy); otherwise it moves as its SEARCH was off."""
    delta = len(_indent(target)) - len(_indent(quoted))
    shift = _shift(delta, char)

    def apply(replace: list[str]) -> list[str]:
        first = next((line for line in replace if line.strip()), None)
        if first is not None and _indent(first) == _indent(target):
            return replace
        return shift(replace)

    return apply


LADDER: tuple[tuple[str, Callable[[list[str], list[str]], list[Match]]], ...] = (
    ("exact", _exact),
    ("indentation", _indentation),
    ("trimmed", _trimmed),
)


def find(lines: list[str], search: list[str], block: int, origin: int = 0) -> Match:
    """The one place `search` matches in `lines` from `origin`, by the first rung that matches."""
    for _rung, rule in LADDER:
        matches = [m for m in rule(lines, search) if m.start >= origin]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            where = ", ".join(str(m.start + 1) for m in matches[:6])
            raise EditError(
                "ambiguous_match",
                f"block {block}: the SEARCH text matches {len(matches)} places (starting at lines {where}); "
                "include more of the surrounding lines so it matches exactly one place",
            )
    raise EditError("search_not_found", _not_found(lines, search, block))


def _not_found(lines: list[str], search: list[str], block: int) -> str:
    """Name the closest real lines (for the model to copy), without ever applying them."""
    wanted = [line.strip() for line in search if line.strip()]
    head = f"block {block}: the SEARCH text does not match the program"
    if not wanted or not lines:
        return head + "."
    width = min(len(wanted), len(lines))
    best, best_at = 0.0, 0
    for i in range(len(lines) - width + 1):
        window = [line.strip() for line in lines[i : i + width]]
        ratio = difflib.SequenceMatcher(None, "\n".join(window), "\n".join(wanted)).ratio()
        if ratio > best:
            best, best_at = ratio, i
    first_missing = next((w for w in wanted if all(w != line.strip() for line in lines)), None)
    shown = "\n".join(lines[best_at : best_at + width])
    detail = f"; its line `{first_missing}` is not in the program" if first_missing else ""
    span = f"line {best_at + 1}" if width == 1 else f"lines {best_at + 1}-{best_at + width}"
    return (
        f"{head}{detail}. The closest real lines of the program ({span}) are:\n"
        f"```\n{shown}\n```\nCopy SEARCH lines exactly from the program, including indentation."
    )


def _check_region(source: str, match: Match, block: int) -> None:
    first, last = match.start + 1, match.start + max(match.length, 1)
    if not in_blocks(source, first, last):
        raise EditError(
            "outside_evolve_block",
            f"block {block}: the SEARCH text is at lines {first}-{last}, outside the evolvable region "
            f"(lines {evolvable_ranges(source)}); change only code between `{START}` and `{END}`",
        )


def _chunks(lines: list[str]) -> list[list[str]]:
    chunks: list[list[str]] = [[]]
    for line in lines:
        if line.strip() == ELISION:
            chunks.append([])
        else:
            chunks[-1].append(line)
    return chunks


def apply_blocks(blocks: list[Block], source: str) -> str:
    """All blocks applied in order to `source`, or EditError; never a partial result."""
    lines = source.splitlines()
    ending = "\n" if source.endswith("\n") else ""
    for block in blocks:
        if any(line.strip().startswith((START, END)) for line in block.replace + block.search):
            raise EditError(
                "outside_evolve_block",
                f"block {block.number} touches an EVOLVE-BLOCK marker line; keep the markers as they are",
            )
        if not any(line.strip() for line in block.search):
            raise EditError(
                "malformed_block",
                f"block {block.number} has an empty SEARCH section; copy the exact lines to change into it",
            )
        if block.search == block.replace:
            raise EditError("unchanged", f"block {block.number}: SEARCH and REPLACE are identical; nothing changes")
        searches, replaces = _chunks(block.search), _chunks(block.replace)
        if len(searches) != len(replaces):
            raise EditError(
                "malformed_block",
                f"block {block.number}: SEARCH has {len(searches) - 1} `...` lines but REPLACE has "
                f"{len(replaces) - 1}; put `...` at the same places in both, or use none",
            )
        origin = 0
        for search, replace in zip(searches, replaces, strict=True):
            if not any(line.strip() for line in search):
                if any(line.strip() for line in replace):
                    raise EditError(
                        "malformed_block",
                        f"block {block.number}: a `...` part of REPLACE adds lines where SEARCH quotes "
                        "none; quote a line to anchor the addition",
                    )
                continue
            match = find(lines, search, block.number, origin)
            _check_region("\n".join(lines) + ending, match, block.number)
            new = match.reindent(replace)
            lines[match.start : match.start + match.length] = new
            origin = match.start + len(new)
    return "\n".join(lines) + ending


class SearchReplace(EditFormat):
    """Edits as SEARCH/REPLACE blocks: cheap in tokens, precise, the default format."""

    name = "diff"
    rules_prompt = "formats/diff.md"

    def apply(self, reply: str, source: str) -> str:
        return apply_blocks(parse_blocks(reply), source)
