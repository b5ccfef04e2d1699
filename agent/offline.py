"""The offline mutator: seeded AST-level edits, no LLM.

It changes numeric constants, swaps arithmetic and comparison operators, and recombines two
parents statement by statement, always inside the EVOLVE-BLOCK regions. It is what `clade run`
uses when no model is configured, and every run says so.
"""

from __future__ import annotations

import ast
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from agent.bandit import Arm
from agent.evolve_blocks import block_lines
from agent.mutation import MutationContext, MutationFailed, Mutator, Parent, Proposal
from archive.vocabulary import FailureKind

ARITHMETIC = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}
COMPARISON = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}
ATTEMPTS = 20


@dataclass(frozen=True)
class _Edit:
    """Replace bytes [start, end) of the source with `text`."""

    start: int
    end: int
    text: str


class _Source:
    """A program with byte offsets for AST positions (col_offset counts UTF-8 bytes)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.data = text.encode()
        self.tree = ast.parse(text)
        self.line_starts = [0]
        for line in self.data.splitlines(keepends=True):
            self.line_starts.append(self.line_starts[-1] + len(line))
        self.blocks = block_lines(text)

    def offset(self, line: int, col: int) -> int:
        return self.line_starts[line - 1] + col

    def in_blocks(self, node: ast.AST) -> bool:
        first, last = getattr(node, "lineno", 0), getattr(node, "end_lineno", 0)
        return any(start <= first and last <= end for start, end in self.blocks)

    def span(self, node: ast.AST) -> tuple[int, int]:
        assert node.end_lineno is not None and node.end_col_offset is not None  # type: ignore[attr-defined]
        return (
            self.offset(node.lineno, node.col_offset),  # type: ignore[attr-defined]
            self.offset(node.end_lineno, node.end_col_offset),  # type: ignore[attr-defined]
        )

    def apply(self, edit: _Edit) -> str:
        return (self.data[: edit.start] + edit.text.encode() + self.data[edit.end :]).decode()


def _new_constant(value: float, rng: random.Random) -> float:
    if value == 0:  # no scale to perturb: try a sign and an order of magnitude
        return rng.choice([-1, 1]) * rng.choice([0.5, 1.0, 2.0, 5.0, 10.0])
    roll = rng.random()
    if roll < 0.6:
        new = value * math.exp(rng.gauss(0.0, 0.5))
    elif roll < 0.9:
        new = value * rng.choice([0.1, 0.25, 0.5, 2.0, 4.0, 10.0])
    else:
        new = -value
    return round(new) if isinstance(value, int) and abs(new) >= 1 else float(f"{new:.4g}")


def _literal(value: float) -> str:
    return f"({value!r})" if value < 0 else repr(value)


def _constant_edits(source: _Source, rng: random.Random) -> list[_Edit]:
    edits = []
    for node in ast.walk(source.tree):
        if isinstance(node, ast.Constant) and type(node.value) in (int, float) and source.in_blocks(node):
            start, end = source.span(node)
            number: float = node.value  # type: ignore[assignment]
            edits.append(_Edit(start, end, _literal(_new_constant(number, rng))))
    return edits


def _operator_edits(source: _Source, rng: random.Random) -> list[_Edit]:
    edits = []
    for node in ast.walk(source.tree):
        if not source.in_blocks(node):
            continue
        pairs: list[tuple[ast.AST, ast.AST, str, dict[Any, str]]] = []
        if isinstance(node, ast.BinOp) and type(node.op) in ARITHMETIC:
            pairs.append((node.left, node.right, ARITHMETIC[type(node.op)], ARITHMETIC))
        elif isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            for i, op in enumerate(node.ops):
                if type(op) in COMPARISON:
                    pairs.append((operands[i], operands[i + 1], COMPARISON[type(op)], COMPARISON))
        for left, right, symbol, table in pairs:
            gap_start, gap_end = source.span(left)[1], source.span(right)[0]
            gap = source.data[gap_start:gap_end].decode()
            position = _find_operator(gap, symbol)
            if position < 0:
                continue
            choice = rng.choice([s for s in table.values() if s != symbol])
            start = gap_start + len(gap[:position].encode())
            edits.append(_Edit(start, start + len(symbol.encode()), choice))
    return edits


def _find_operator(gap: str, symbol: str) -> int:
    """Index of `symbol` as a whole operator in the text between two operands, else -1."""
    for index in range(len(gap)):
        if gap.startswith(symbol, index):
            after = gap[index + len(symbol) : index + len(symbol) + 1]
            before = gap[index - 1 : index] if index else ""
            if after not in ("=", "*", "/") and before not in ("<", ">", "=", "!", "*", "/"):
                return index
    return -1


def _block_statements(source: _Source) -> list[ast.stmt]:
    """The outermost statements lying inside the blocks, in order."""
    found: list[ast.stmt] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.stmt) and source.in_blocks(child):
                found.append(child)
            else:
                visit(child)

    visit(source.tree)
    return found


def _crossover(first: _Source, second: _Source, rng: random.Random) -> str | None:
    """Uniform crossover of aligned block statements; None when the blocks do not align."""
    mine, theirs = _block_statements(first), _block_statements(second)
    if not mine or len(mine) != len(theirs):
        return None
    lines = first.text.splitlines(keepends=True)
    donor = second.text.splitlines(keepends=True)
    for a, b in sorted(zip(mine, theirs, strict=False), key=lambda pair: -pair[0].lineno):
        if rng.random() < 0.5:
            lines[a.lineno - 1 : a.end_lineno] = donor[b.lineno - 1 : b.end_lineno]
    return "".join(lines)


CONSTANT, OPERATOR, CROSSOVER = "offline:constant", "offline:operator", "offline:crossover"


class OfflineMutator(Mutator):
    name = "offline mutator (no LLM configured: seeded AST edits of constants, operators, crossover)"

    def __init__(self, crossover_rate: float = 0.2, constant_share: float = 0.7) -> None:
        self.crossover_rate = crossover_rate
        self.constant_share = constant_share
        """Of the point edits, the share that change a constant (the rest swap an operator)."""

    def arms(self) -> Sequence[Arm]:
        operators = [CONSTANT, OPERATOR] + ([CROSSOVER] if self.crossover_rate > 0 else [])
        return [Arm(operator, model="offline") for operator in operators]

    def parents_wanted(self, rng: random.Random) -> int:
        return 2 if rng.random() < self.crossover_rate else 1

    async def _propose(self, parents: Sequence[Parent], context: MutationContext) -> Proposal:
        main = context.main_file
        rng = context.rng
        parent_text = parents[0].files[main]
        try:
            source = _Source(parent_text)
        except SyntaxError:
            raise MutationFailed(FailureKind.UNPARSABLE_PARENT, "the parent does not parse") from None
        if len(parents) > 1:
            donor = _Source(parents[1].files[main])
            for _ in range(ATTEMPTS):
                child = _crossover(source, donor, rng)
                if child is None:
                    break
                if child not in (parent_text, donor.text):
                    return self._proposal(parents[0], main, child, CROSSOVER, context.arm)
        # A crossover that cannot recombine (one program in the archive, or parents that differ in
        # one statement) makes a point edit instead, so no iteration is wasted; the adaptive mix
        # credits the arm it chose with what came of it (the child's operator says what was done).
        chosen = context.arm.operator if context.arm is not None else None
        for _ in range(ATTEMPTS):
            # The bandit's arm fixes the kind of edit; without one (or after a crossover that
            # could not align) constants are changed `constant_share` of the time (70 %).
            use_constants = chosen == CONSTANT if chosen in (CONSTANT, OPERATOR) else rng.random() < self.constant_share
            edits = _constant_edits(source, rng) if use_constants else _operator_edits(source, rng)
            if not edits:
                edits = _operator_edits(source, rng) if use_constants else _constant_edits(source, rng)
            if not edits:
                break
            child = source.apply(rng.choice(edits))
            if child != parent_text:
                return self._proposal(parents[0], main, child, CONSTANT if use_constants else OPERATOR, context.arm)
        raise MutationFailed(FailureKind.NO_EDIT, "the evolvable region has no constant or operator to change")

    def _proposal(self, parent: Parent, main: str, child: str, operator: str, arm: Arm | None) -> Proposal:
        return Proposal(
            files={**parent.files, main: child},
            operator=operator,
            model="offline",
            edit_format="ast",
            arm=arm or Arm(operator, model="offline"),
        )
