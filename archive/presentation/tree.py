"""`clade tree`: the lineage as a Rich text tree, with unpromising branches folded and chains flat.

Two rules keep a run of thousands of nodes readable in a terminal:

- **Folding**: the children of a node whose branches never beat it (no valid score above the
  parent's anywhere below them, no best node, nothing still being evaluated) are shown as one
  `┄` summary line with their size, best score and statuses.
- **Flat chains**: an only child is drawn at its parent's column, marked `↳`, so indentation grows
  only where the lineage branches, not with every generation.
"""

from __future__ import annotations

from rich.text import Text

from archive.lineage import Branch, Lineage
from archive.text import visible as printable
from archive.vocabulary import NodeStatus

STATUS_STYLE: dict[str, str] = {
    NodeStatus.VALID: "green",
    NodeStatus.INVALID: "yellow",
    NodeStatus.ERROR: "red",
    NodeStatus.DUPLICATE: "dim",
    NodeStatus.PENDING: "cyan",
    NodeStatus.RUNNING: "cyan",
}

FOLD_ABOVE = 40
"""Trees with more visible nodes than this fold unpromising branches unless asked not to."""


def fmt_score(score: float | None) -> str:
    return "—" if score is None else f"{score:.6g}"


def _label(text: Text, lineage: Lineage, node_id: int) -> None:
    row = lineage.rows[node_id]
    style = STATUS_STYLE.get(row.status, "")
    text.append(f"#{row.id} ", style="bold")
    text.append(fmt_score(row.score), style=style)
    text.append(f" {row.status}", style=style)
    operator = f"  {row.operator}" + (f" · {row.model}" if row.model else "")
    text.append(printable(operator, one_line=True), style="blue")
    text.append(f"  g{row.generation}", style="dim")
    if row.second_parent_id is not None:
        text.append(f"  ×#{row.second_parent_id}", style="magenta")
    if row.id == lineage.best_id:
        text.append("  ★ best", style="bold green")
    text.append("\n")


def _branch_line(text: Text, branch: Branch) -> None:
    statuses = ", ".join(f"{n} {status}" for status, n in sorted(branch.statuses.items()))
    what = "branch" if len(branch.roots) == 1 else "branches"
    text.append(
        f"┄ {len(branch.roots)} {what}, {branch.size} nodes, no gain on #{branch.parent}"
        + printable(f" (best {fmt_score(branch.best_score)}; {statuses})", one_line=True)
        + "\n",
        style="dim",
    )


def _entries(lineage: Lineage, node_id: int, visible: set[int], fold: bool) -> list[int | Branch]:
    kids = [k for k in lineage.children.get(node_id, ()) if k in visible]
    if not fold:
        return list(kids)
    folded = [k for k in kids if not lineage.promising(node_id, k)]
    if not folded or (len(folded) == 1 and lineage.subtree_size[folded[0]] == 1):
        return list(kids)  # a summary line would not save a line
    kept: list[int | Branch] = [k for k in kids if k not in set(folded)]
    kept.append(lineage.branch(node_id, folded))
    return kept


def render_tree(lineage: Lineage, visible: set[int], title: str, *, fold: bool | None = None) -> Text:
    """The tree of the `visible` nodes; `fold` None folds only when the tree is large."""
    if fold is None:
        fold = len(visible) > FOLD_ABOVE
    text = Text(printable(title, one_line=True) + "\n", style="bold")  # run names are the user's
    roots = [r for r in lineage.roots if r in visible]
    # (entry, prefix of its line, last among its siblings, drawn as an only child)
    stack: list[tuple[int | Branch, str, bool, bool]] = [
        (root, "", i == len(roots) - 1, False) for i, root in reversed(list(enumerate(roots)))
    ]
    used_chain = used_fold = False
    while stack:
        entry, prefix, last, chained = stack.pop()
        if chained:
            text.append(prefix + "↳ ", style="dim")
            child_prefix = prefix
        else:
            text.append(prefix + ("└── " if last else "├── "), style="dim")
            child_prefix = prefix + ("    " if last else "│   ")
        if isinstance(entry, Branch):
            _branch_line(text, entry)
            used_fold = True
            continue
        _label(text, lineage, entry)
        entries = _entries(lineage, entry, visible, fold)
        if len(entries) == 1 and not isinstance(entries[0], Branch):
            stack.append((entries[0], child_prefix, True, True))
            used_chain = True
            continue
        for i in reversed(range(len(entries))):
            stack.append((entries[i], child_prefix, i == len(entries) - 1, False))
    if not roots:
        text.append("(no node matches)\n", style="dim")
    notes = []
    if used_chain:
        notes.append("↳ an only child, drawn at its parent's column")
    if used_fold:
        notes.append("┄ branches that never beat their parent, folded (--all shows them)")
    if notes:
        text.append("; ".join(notes) + "\n", style="dim italic")
    text.rstrip()
    return text
