"""Parent selection strategies behind a name registry; all draw from a seeded generator.

A strategy is named alone (`dgm`) or with parameters (`power_law:alpha=1.5`,
`islands:n=4,interval=5,inner=power_law`, `map_elites:bins=8,dims=width+height`); the resolver
checks them against the strategy's constructor and says precisely what is wrong.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

from archive.database import ArchiveError
from archive.islands import Islands
from archive.map_elites import MapElites
from archive.strategy import Migration, Selection, SelectionContext, Selector, draw
from archive.weighted import DGM, Best, PowerLaw, Uniform

__all__ = [
    "SELECTORS",
    "Migration",
    "Selection",
    "SelectionContext",
    "Selector",
    "draw",
    "get_selector",
]

SELECTORS: dict[str, Callable[..., Selector]] = {
    cls.name: cls for cls in (DGM, PowerLaw, Uniform, Best, MapElites, Islands)
}


def get_selector(spec: str) -> Selector:
    """The selector named by `spec`: `NAME` or `NAME:key=value,key=value`."""
    name, _, raw = spec.strip().partition(":")
    factory = SELECTORS.get(name)
    if factory is None:
        raise ArchiveError(f"unknown parent selection {name!r}; choose one of {', '.join(sorted(SELECTORS))}")
    parameters = inspect.signature(factory).parameters
    accepted = ", ".join(f"{p}={parameters[p].default!r}" for p in parameters) or "none"
    kwargs: dict[str, object] = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        key, equals, value = item.partition("=")
        if not equals or key not in parameters:
            raise ArchiveError(f"parent selection {name!r}: bad parameter {item!r}; it takes {accepted}")
        kind = type(parameters[key].default)
        try:
            kwargs[key] = kind(value)
        except ValueError:
            raise ArchiveError(
                f"parent selection {name!r}: {key} must be {kind.__name__}, not {value!r}; it takes {accepted}"
            ) from None
    return factory(**kwargs)
