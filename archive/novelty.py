"""Optional novelty filter: a child too close to a program already in the run is not evaluated.

Programs are embedded by feature hashing: the token 1- to 3-grams of the normalised source
(comments and layout removed, as for exact dedup) are hashed into a fixed-size signed vector,
then L2-normalised, so the cosine of two embeddings measures how much code they share. This is
a lexical embedding, cheap and offline; it catches near-copies (a constant nudged, a line
reordered), not programs that do the same thing in other words.

Off by default. With a threshold set, a child whose cosine to any node of the run reaches it is
recorded as `duplicate`, naming the nearest node, and never evaluated.
"""

from __future__ import annotations

import hashlib
import io
import tokenize
from collections.abc import Mapping

import numpy as np

from archive.dedup import normalise

DIMENSIONS = 1024
_SKIPPED = {tokenize.NEWLINE, tokenize.NL, tokenize.INDENT, tokenize.DEDENT, tokenize.COMMENT, tokenize.ENDMARKER}


def _tokens(source: str) -> list[str]:
    try:
        return [
            token.string
            for token in tokenize.generate_tokens(io.StringIO(normalise(source)).readline)
            if token.type not in _SKIPPED
        ]
    except (tokenize.TokenError, SyntaxError):
        return source.split()


def embed(files: Mapping[str, str]) -> np.ndarray:
    """A unit vector for a program (all its files); the zero vector for an empty one."""
    vector = np.zeros(DIMENSIONS)
    for path in sorted(files):
        tokens = _tokens(files[path]) if path.endswith(".py") else files[path].split()
        for size in (1, 2, 3):
            for start in range(len(tokens) - size + 1):
                gram = "\x00".join(tokens[start : start + size]).encode()
                digest = int.from_bytes(hashlib.blake2b(gram, digest_size=8).digest(), "little")
                vector[digest % DIMENSIONS] += 1.0 if digest >> 63 else -1.0
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm else vector


class NoveltyIndex:
    """The embeddings of a run's programs, for nearest-neighbour checks of new children."""

    def __init__(self, threshold: float) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"a novelty threshold is a cosine in (0, 1], not {threshold}")
        self.threshold = threshold
        self._ids: list[int] = []
        self._vectors = np.zeros((0, DIMENSIONS))

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, node_id: int, vector: np.ndarray) -> None:
        self._ids.append(node_id)
        self._vectors = np.vstack([self._vectors, vector[None, :]])

    def too_close(self, vector: np.ndarray) -> tuple[int, float] | None:
        """(nearest node, cosine) when the nearest program reaches the threshold, else None."""
        if not self._ids:
            return None
        similarities = self._vectors @ vector
        nearest = int(np.argmax(similarities))
        similarity = float(similarities[nearest])
        return (self._ids[nearest], similarity) if similarity >= self.threshold else None
