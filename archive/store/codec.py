"""How values are stored: file contents as compressed blobs, text without NUL, finite descriptors."""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping
from typing import Any

from archive.errors import ArchiveError


def pack(content: bytes) -> tuple[bytes, str]:
    """(stored bytes, encoding): zlib when it saves space, which for program text it does."""
    packed = zlib.compress(content, 6)
    return (packed, "zlib") if len(packed) < len(content) else (content, "raw")


def unpack(content: bytes, encoding: str) -> str:
    return (zlib.decompress(content) if encoding == "zlib" else content).decode()


def storable(value: Any) -> Any:
    """Text as every backend stores it: PostgreSQL refuses NUL in text, and what a candidate or
    model wrote may hold one; it is kept visible as the escape `\\x00`. Non-text passes through."""
    if isinstance(value, str) and "\x00" in value:
        return value.replace("\x00", "\\x00")
    if isinstance(value, list):
        return [storable(item) for item in value]
    if isinstance(value, dict):
        return {storable(key): storable(item) for key, item in value.items()}
    return value


def clean_descriptors(descriptors: Mapping[str, Any]) -> dict[str, float]:
    clean: dict[str, float] = {}
    for name, value in descriptors.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ArchiveError(f"behaviour descriptor {name!r} must be a finite number, not {value!r}")
        clean[str(name)] = float(value)
    return clean
