"""EVOLVE-BLOCK regions: which lines of a program a mutation may change."""

from __future__ import annotations

import ast

START, END = "# EVOLVE-BLOCK-START", "# EVOLVE-BLOCK-END"


class EditRejected(ValueError):
    """A proposed child breaks a rule: unparsable, unchanged, or edits outside its blocks."""


def block_lines(source: str) -> list[tuple[int, int]]:
    """1-based inclusive line ranges strictly between markers; the whole file without markers."""
    lines = source.splitlines()
    ranges: list[tuple[int, int]] = []
    start: int | None = None
    for number, line in enumerate(lines, start=1):
        marker = line.strip()
        if marker.startswith(START):
            start = number + 1
        elif marker.startswith(END) and start is not None:
            ranges.append((start, number - 1))
            start = None
    if not ranges and not any(line.strip().startswith((START, END)) for line in lines):
        return [(1, len(lines))]
    return ranges


def frozen_text(source: str) -> list[str]:
    """The lines outside the evolvable blocks (markers included), which must never change."""
    lines = source.splitlines()
    inside = {n for start, end in block_lines(source) for n in range(start, end + 1)}
    return [line for number, line in enumerate(lines, start=1) if number not in inside]


def validate_child(parent: str, child: str) -> None:
    """Raise EditRejected unless `child` parses, differs from `parent`, and keeps frozen text."""
    if child == parent:
        raise EditRejected("the child is identical to its parent")
    try:
        ast.parse(child)
    except SyntaxError as exc:
        raise EditRejected(f"the child does not parse: {exc.msg} (line {exc.lineno})") from None
    if frozen_text(child) != frozen_text(parent):
        raise EditRejected("the edit changes code outside the EVOLVE-BLOCK regions")
