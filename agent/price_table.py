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


@functools.cache
def _table() -> dict[str, Any]:
    spec = importlib.util.find_spec("litellm")  # finds the package; does not run its __init__
    for where in (spec.submodule_search_locations or []) if spec else []:
        try:
            loaded = json.loads((Path(where) / TABLE_FILE).read_text())
        except (OSError, ValueError):
            continue
        return loaded if isinstance(loaded, dict) else {}
    return {}


def model_info(model: str) -> dict[str, Any] | None:
    """The table's entry for `model` (`openai/gpt-4o-mini` or `gpt-4o-mini`), else None."""
    table = _table()
    for name in (model, model.split("/", 1)[-1]):
        entry = table.get(name)
        if isinstance(entry, dict) and name != "sample_spec":
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
