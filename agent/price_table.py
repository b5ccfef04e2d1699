"""litellm's bundled model table (prices and context windows), read as data without importing
litellm (which takes seconds): the direct OpenAI-compatible transport prices its calls and sizes
its prompts from the same file litellm would use with `LITELLM_LOCAL_MODEL_COST_MAP=True`."""

from __future__ import annotations

import functools
import importlib.util
import json
from pathlib import Path
from typing import Any

TABLE_FILE = "model_prices_and_context_window_backup.json"


def _table_text() -> str:
    spec = importlib.util.find_spec("litellm")  # finds the package; does not run its __init__
    for where in (spec.submodule_search_locations or []) if spec else []:
        try:
            return (Path(where) / TABLE_FILE).read_text()
        except OSError:
            continue
    return ""


@functools.cache
def _entry(name: str) -> dict[str, Any] | None:
    """One model's entry, decoded alone: the whole table as Python objects would cost ~40 MB."""
    text = _table_text()
    key = json.dumps(name) + ":"
    at = text.find(key)
    while at > 0 and text[at - 1] not in "{, \n\t":
        at = text.find(key, at + 1)
    if at < 0 or name == "sample_spec":
        return None
    start = at + len(key)
    while start < len(text) and text[start].isspace():
        start += 1
    try:
        entry, _ = json.JSONDecoder().raw_decode(text, start)
    except ValueError:
        return None
    return entry if isinstance(entry, dict) else None


def model_info(model: str) -> dict[str, Any] | None:
    """The table's entry for `model` (`openai/gpt-4o-mini` or `gpt-4o-mini`), else None."""
    for name in (model, model.split("/", 1)[-1]):
        entry = _entry(name)
        if entry is not None:
            return entry
    return None


def price(model: str, prompt_tokens: int, completion_tokens: int) -> float | None:
    """US$ for a call of that size; None when the table has no price for the model."""
    info = model_info(model)
    if info is None:
        return None
    try:
        per_in, per_out = float(info["input_cost_per_token"]), float(info["output_cost_per_token"])
    except (KeyError, TypeError, ValueError):
        return None
    return prompt_tokens * per_in + completion_tokens * per_out


def context_tokens(model: str) -> int | None:
    info = model_info(model) or {}
    size = info.get("max_input_tokens") or info.get("max_tokens")
    return int(size) if isinstance(size, int | float) and size > 0 else None
