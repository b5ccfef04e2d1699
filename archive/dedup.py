"""Normalised code hashes: two programs that differ only in comments or layout are one."""

from __future__ import annotations

import ast
import functools
import hashlib
from collections.abc import Mapping


@functools.lru_cache(maxsize=256)
def normalise(source: str) -> str:
    """The program with comments, blank lines and formatting removed (when it parses). Cached:
    a child is hashed when admitted and again when stored, its parents' sources recur."""
    try:
        return ast.unparse(ast.parse(source))
    except (SyntaxError, ValueError, RecursionError):
        return "\n".join(line.rstrip() for line in source.strip().splitlines() if line.strip())


def code_hash(files: Mapping[str, str]) -> str:
    digest = hashlib.sha256()
    for path in sorted(files):
        text = normalise(files[path]) if path.endswith(".py") else files[path]
        digest.update(path.encode() + b"\0" + text.encode() + b"\0")
    return digest.hexdigest()
