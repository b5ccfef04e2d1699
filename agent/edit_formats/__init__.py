"""Edit formats: how an LLM reply becomes a child program. One class per format."""

from __future__ import annotations

from agent.config import ConfigError
from agent.edit_formats.base import EditError, EditFormat
from agent.edit_formats.crossover import Crossover
from agent.edit_formats.search_replace import SearchReplace
from agent.edit_formats.whole_file import WholeFile

FORMATS: dict[str, type[EditFormat]] = {cls.name: cls for cls in (SearchReplace, WholeFile, Crossover)}


def get_format(name: str) -> EditFormat:
    try:
        return FORMATS[name]()
    except KeyError:
        raise ConfigError(f"unknown edit format {name!r}; choose one of {sorted(FORMATS)}") from None


__all__ = ["FORMATS", "Crossover", "EditError", "EditFormat", "SearchReplace", "WholeFile", "get_format"]
