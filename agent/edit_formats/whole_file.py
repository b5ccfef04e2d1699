"""Whole-file rewrite: the model sends the complete new program in one code block.

Costs more tokens than SEARCH/REPLACE but cannot mis-quote the parent, so it suits large
rewrites and models that handle diffs badly. EVOLVE-BLOCK regions are enforced: every line
outside them must come back unchanged, and the message names the first one that did not.
"""

from __future__ import annotations

import ast
import re

from agent.edit_formats.base import EditError, EditFormat, evolvable_ranges
from agent.evolve_blocks import block_lines, frozen_text

CODE_BLOCK = re.compile(r"^[ \t]*```[\w+-]*[ \t]*\n(.*?)^[ \t]*```[ \t]*$", re.DOTALL | re.MULTILINE)


def extract_code(reply: str) -> str:
    """The largest fenced code block; a reply that is bare Python counts as one."""
    blocks = [m.group(1) for m in CODE_BLOCK.finditer(reply)]
    if blocks:
        return max(blocks, key=len)
    if "```" in reply:
        raise EditError(
            "malformed_block",
            "the reply opens a ``` code block that is never closed (was the reply truncated?); "
            "send the whole program in one complete ```python block",
        )
    try:
        ast.parse(reply)
    except SyntaxError:
        raise EditError(
            "no_edit", "the reply has no ```python code block; send the complete new program in one"
        ) from None
    if "def " not in reply:
        raise EditError("no_edit", "the reply has no ```python code block with the program; send the complete program")
    return reply


class WholeFile(EditFormat):
    """Edits as a complete new file."""

    name = "whole"
    rules_prompt = "formats/whole.md"

    def apply(self, reply: str, source: str) -> str:
        code = extract_code(reply)
        if source.endswith("\n") and not code.endswith("\n"):
            code += "\n"
        frozen, kept = frozen_text(source), frozen_text(code)
        if kept != frozen and block_lines(source) != [(1, len(source.splitlines()))]:
            for want, got in zip(frozen, [*kept, *[""] * len(frozen)], strict=False):
                if want != got:
                    raise EditError(
                        "outside_evolve_block",
                        f"the new program changes or drops the line `{want.strip()}`, which lies outside the "
                        f"evolvable region (lines {evolvable_ranges(source)}); keep every line outside the "
                        "EVOLVE-BLOCK markers, and the markers themselves, exactly as they are",
                    )
            raise EditError(
                "outside_evolve_block",
                "the new program adds lines outside the EVOLVE-BLOCK markers; change only code between them",
            )
        return code
