"""A scripted OpenAI-compatible model for the perf scripts: the tests' real HTTP server
(tests/agent/scripted_server.py) answering every chat request, after `latency_s`, with a
SEARCH/REPLACE edit of the OR3 task's `priority` (benchmarks/perf/or3_openevolve). Two replies
in three apply (each adds one line with a fresh constant, so no child is a duplicate); the
third searches for a line that is not there, so it costs a repair round, as real models do."""

from __future__ import annotations

import itertools
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.agent.scripted_server import ScriptedServer, Step, serve

ANCHOR = "    remaining = bins - item\n"


def edit(n: int) -> str:
    search = ANCHOR if n % 3 != 2 else "    remaining = bins + item  # not in the program\n"
    nudge = f"    remaining = remaining + {((n * 7919) % 1000) / 1e6:.6f} * (remaining > {n % 50})\n"
    return (
        f"Nudge the fit by a small margin (variant {n}).\n\n"
        f"<<<<<<< SEARCH\n{search}=======\n{ANCHOR}{nudge}>>>>>>> REPLACE\n"
    )


@contextmanager
def serve_edits(latency_s: float = 0.0) -> Iterator[ScriptedServer]:
    counter, lock = itertools.count(), threading.Lock()

    def respond(body: dict[str, Any]) -> Step:
        with lock:
            n = next(counter)
        return Step(text=edit(n), stall_s=latency_s, prompt_tokens=900, completion_tokens=120)

    with serve(responder=respond) as server:
        yield server
