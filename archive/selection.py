"""Parent selection strategies behind a name registry; all draw from a seeded generator.

A strategy is named alone (`dgm`) or with parameters (`power_law:alpha=1.5`,
`islands:n=4,interval=5,inner=power_law`, `map_elites:bins=8,dims=width+height`); the resolver
checks them against the strategy's constructor and says precisely what is wrong.
"""

from __future__ import annotations

from collections.abc import Callable

from archive.islands import Islands
from archive.map_elites import MapElites
from archive.strategy import Migration, Selection, SelectionContext, Selector, draw, parse_selector
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
    return parse_selector(spec, SELECTORS)
