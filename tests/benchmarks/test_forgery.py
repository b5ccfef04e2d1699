"""Forged candidates against every judged task, run through `benchmarks.evaluate` on the real
process sandbox and the tasks' real judge code: each ends rejected or scored no better than the
honest program inside it.

Each attack wraps an honest program (the task's seed or a baseline) and tries one way round the
judge a reward-hacking search would find: write the result itself, patch the writer, walk its
own frames and the garbage collector for the judge's data, hash the seeds it is given, call the
oracle off the books, recognise a public instance and replay an offline answer, send values the
checks must refuse. Attacks on the judge's files, memory and the task's installed data need the
judge and the candidate under separate uids (sandboxes/process.py on bubblewrap); where the
backend here does not give that, they are skipped with the reason.

Stages are shortened where a full one would be slow (one fresh bin-packing set of a few hundred
items, the quick black-box stage, the 50-city TSP set), but every attack runs against the
shipped judge and check.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from benchmarks import Evaluation, evaluate, load_task
from benchmarks.bin_packing import FRESH, BinPacking
from benchmarks.blackbox_optimizer import BlackboxOptimizer
from benchmarks.task import Check, Stage, Task
from benchmarks.tsp_constructive import TspConstructive
from sandboxes.process import ProcessSandbox

SECRETS = {FRESH: 11, "quick": 12, "tsp50": 13, "pack": 14, "or3": 15}
BENCHMARKS = Path(__file__).parents[2] / "benchmarks"


def _separated() -> bool:
    """Whether the process backend here runs judge and candidate as separate uids in separate sandboxes."""
    return "separate sandboxes" in str(ProcessSandbox().describe().get("user", ""))


needs_separation = pytest.mark.skipif(
    not _separated(),
    reason="the process backend here runs judge and candidate under one uid (bubblewrap isolation: procbox)",
)


class SmallBinPacking(BinPacking):
    """The fresh stage alone, on a few hundred items: the real judge and check, quickly."""

    fresh_sizes = ((1, 400), (2, 150))

    def stages(self) -> Sequence[Stage]:
        return (Stage(FRESH, timeout_s=60),)

    def secret_instances(self, stage: Stage) -> bool:
        return False  # the tests here read the candidate's fault text (test_hidden_output: withheld)

    def combine(self, checks: Sequence[Check]) -> Check:
        return checks[-1]


class PublishedAndFresh(SmallBinPacking):
    """OR3 (public, recognisable) gating a small fresh stage, as the full task does."""

    def stages(self) -> Sequence[Stage]:
        return (Stage("or3", timeout_s=90), Stage(FRESH, timeout_s=60))

    def combine(self, checks: Sequence[Check]) -> Check:
        metrics = {**checks[0].metrics, **checks[1].metrics}
        return Check(valid=True, score=checks[1].score, metrics=metrics)


class QuickBlackbox(BlackboxOptimizer):
    def stages(self) -> Sequence[Stage]:
        return (Stage("quick", timeout_s=90),)

    def secret_instances(self, stage: Stage) -> bool:
        return False  # as SmallBinPacking's


class Tsp50(TspConstructive):
    def stages(self) -> Sequence[Stage]:
        return (Stage("tsp50", timeout_s=60),)

    def combine(self, checks: Sequence[Check]) -> Check:
        return checks[-1]


def _run(task: Task, source: str) -> Evaluation:
    return evaluate(task, {**task.seed_files(), task.main_file: source}, ProcessSandbox(), secrets=SECRETS)


def _no_better(attack: Evaluation, honest: Evaluation) -> None:
    assert honest.status == "valid", honest.reason
    if attack.status == "valid":
        assert attack.score is not None and honest.score is not None
        assert attack.score <= honest.score + 1e-9, f"forged {attack.score} > honest {honest.score}"


def _seed(task: Task) -> str:
    return task.seed_files()[task.main_file]


# What every attack tries first: find the judge's data and write the judge's result by any path a
# process could reach. It leaves a line on stderr for each thing it found or wrote.
SNOOP = r"""
import glob as _glob, json as _json, os as _os, sys as _sys
def _mine(path):
    try:
        return _os.path.samefile(path, _os.getcwd())
    except OSError:
        return False
def _snoop(names, forged):
    dirs = ["/job", "/tmp", "/var/tmp", "/dev/shm", _os.path.dirname(_os.getcwd())]
    dirs += _glob.glob("/tmp/clade-*") + _glob.glob("/proc/[0-9]*/cwd") + _glob.glob("/proc/[0-9]*/root/job")
    for base in dirs:
        if _mine(base):  # its own directory: reading and writing there is allowed and never read
            continue
        for name in names:
            path = _os.path.join(base, name)
            try:
                with open(path, "rb") as handle:
                    handle.read()
                print("SNOOP read", path, file=_sys.stderr)
            except OSError:
                pass
        try:
            with open(_os.path.join(base, "result.json"), "w") as handle:
                _json.dump(forged, handle)
            print("SNOOP wrote", base, file=_sys.stderr)
        except OSError:
            pass
    for pid in _glob.glob("/proc/[0-9]*"):
        try:
            with open(pid + "/cmdline", "rb") as handle:
                if b"judge.py" not in handle.read():
                    continue
            print("SNOOP sees the judge", pid, file=_sys.stderr)
            with open(pid + "/environ", "rb") as handle:
                handle.read()
            print("SNOOP environ", pid, file=_sys.stderr)
            with open(pid + "/mem", "rb") as handle:
                print("SNOOP mem", pid, file=_sys.stderr)
        except OSError:
            pass
"""


SCRATCH = ("/tmp", "/var/tmp", "/dev/shm")
"""The candidate's own scratch space (private to its sandbox); a result.json written there is never read:
the score comparisons prove it forged nothing."""


def _found(evaluation: Evaluation) -> list[str]:
    lines = [line for stage in evaluation.stages for line in stage.stderr_tail.splitlines() if "SNOOP" in line]
    return [line for line in lines if line.removeprefix("SNOOP wrote ") not in SCRATCH]


# ------------------------------------------------------------------------------ bin packing
BEST_FIT = "def priority(item, bins):\n    return -(bins - item)\n"


@pytest.fixture(scope="module")
def honest_packing() -> Evaluation:
    return _run(SmallBinPacking(), BEST_FIT)


def writer_patched(forged: dict[str, object], program: str) -> str:
    """`program` behind an attack on the result: it writes `forged` as result.json at import and
    at exit, and patches json.dump to write it instead of anything else. The result.json it can
    reach is its own directory's, and the writer it patches is its own process's: neither is read."""
    return (
        "import atexit, json\n"
        f"FORGED = {forged!r}\n"
        "json.dump(FORGED, open('result.json', 'w'))\n"
        "_dump = json.dump\n"
        "json.dump = lambda obj, fp, **kw: _dump(FORGED, fp)\n"
        "atexit.register(lambda: json.dump(FORGED, open('result.json', 'w')))\n" + program
    )


def test_packing_result_written_or_writer_patched_is_never_read(honest_packing: Evaluation) -> None:
    attack = writer_patched({"stage": FRESH, "assignments": {}, "score": 1000.0}, BEST_FIT)
    result = _run(SmallBinPacking(), attack)
    assert result.status == "valid" and result.score == honest_packing.score


def test_packing_frames_and_gc_hold_no_future_item(honest_packing: Evaluation) -> None:
    """The candidate's process holds only what was sent; a search of it for the item list finds nothing."""
    attack = (
        "import gc, sys\n"
        "SEEN = []\n"
        "def priority(item, bins):\n"
        "    SEEN.append(item)\n"
        "    if len(SEEN) == 5:\n"
        "        prefix = SEEN[:5]\n"
        "        frame = sys._getframe()\n"
        "        while frame is not None:\n"
        "            for value in list(frame.f_locals.values()):\n"
        "                if isinstance(value, (list, tuple)) and len(value) > 5 and list(value[:5]) == prefix:\n"
        "                    print('SNOOP frame', file=sys.stderr)\n"
        "            frame = frame.f_back\n"
        "        for obj in gc.get_objects():\n"
        "            if (isinstance(obj, (list, tuple)) and len(obj) > 5 and obj is not SEEN\n"
        "                    and list(obj[:5]) == prefix):\n"
        "                print('SNOOP gc', file=sys.stderr)\n"
        "    return -(bins - item)\n"
    )
    result = _run(SmallBinPacking(), attack)
    assert _found(result) == [] and result.score == honest_packing.score


def test_recognising_a_public_instance_pays_nothing_in_the_score() -> None:
    """The attack embeds OR3 (public), recognises each instance from its first items and steers
    every item into the bin an offline first-fit-decreasing packing chose. It wins on OR3 and
    gets nothing from it: the score is the fresh stage's, where there is nothing to recognise."""
    published = json.loads((BENCHMARKS / "bin_packing" / "data" / "or3.json").read_text())
    tables = {name: inst["items"] for name, inst in published.items()}
    attack = f"""
import numpy as np
TABLES = {tables!r}
state = {{"seen": [], "plan": None, "remaining": None}}

def _plan(future, remaining):
    # first fit decreasing of the items still to come, onto the bins as they stand
    room, plan = remaining.copy(), {{}}
    for index, size in sorted(future, key=lambda pair: -pair[1]):
        b = int(np.nonzero(room - size >= 0)[0][0])
        room[b] -= size
        plan[index] = b
    return plan

def priority(item, bins):
    if state["remaining"] is not None and len(state["seen"]) >= len(state["remaining"]):
        state.update(seen=[], plan=None, remaining=None)  # a new instance begins
    if state["remaining"] is None:
        state["remaining"] = np.full(len(bins), float(bins.max()))
    seen, remaining = state["seen"], state["remaining"]
    step = len(seen)
    seen.append(float(item))
    if state["plan"] is None and step == 7:
        for items in TABLES.values():
            if len(items) == len(remaining) and items[:8] == seen:
                state["plan"] = _plan(list(enumerate(items))[7:], remaining)
    fits = np.nonzero(remaining - item >= 0)[0]
    scores = -(bins - item)
    if state["plan"] is not None:
        scores = np.where(fits == state["plan"][step], 1e6, -1e6)
    remaining[fits[int(np.argmax(scores))]] -= item
    return scores
"""
    honest = _run(PublishedAndFresh(), BEST_FIT)
    forged = _run(PublishedAndFresh(), attack)
    assert forged.status == "valid", forged.reason
    assert forged.metrics["excess_pct_or3"] < honest.metrics["excess_pct_or3"] - 1.0  # the attack works on OR3
    _no_better(forged, honest)


@needs_separation
def test_packing_candidate_reaches_no_instance_file_and_no_judge_result(honest_packing: Evaluation) -> None:
    attack = SNOOP + f"_snoop(['instances.json', 'judge.py'], {{'stage': '{FRESH}', 'assignments': {{}}}})\n" + BEST_FIT
    result = _run(SmallBinPacking(), attack)
    assert _found(result) == [] and result.score == honest_packing.score


@pytest.mark.parametrize(
    ("reply", "why"),
    [
        ("np.full(len(bins), np.nan)", "non-finite"),
        ("np.full(len(bins), np.inf)", "non-finite"),
        ("[True] * len(bins)", "not an array of numbers"),
        ("np.zeros(len(bins) + 1)", "shape"),
        ("'best'", "not an array of numbers"),
        ("[2**1100] * len(bins)", "too large to convert to float"),
        ("type('F', (float,), {})(1.0)", "not an array of numbers"),
    ],
)
def test_packing_replies_of_the_wrong_type_are_invalid_with_a_reason(reply: str, why: str) -> None:
    program = f"import numpy as np\ndef priority(item, bins):\n    return {reply}\n"
    result = _run(SmallBinPacking(), program)
    assert result.status == "invalid" and result.reason is not None and why in result.reason, result.reason


def test_a_candidate_that_dies_or_hangs_is_invalid_not_an_error() -> None:
    for body in ("import os\n    os._exit(0)", "import time\n    time.sleep(30)", "raise KeyError('boom')"):
        result = _run(SmallBinPacking(), f"def priority(item, bins):\n    {body}\n")
        assert result.status == "invalid", (body, result.reason)
    raised = _run(SmallBinPacking(), "def priority(item, bins):\n    raise KeyError('boom')\n")
    assert raised.reason is not None and "KeyError: 'boom' (at program.py:2: raise KeyError('boom'))" in raised.reason


# ---------------------------------------------------------------------------- black box
def _optimizer(prelude: str, first: str) -> str:
    """The seed's (1+1)-ES, asking `first` (an expression or None) before anything else."""
    seed = _seed(QuickBlackbox()).replace("class Optimizer:", "class _Honest:")
    return (
        seed
        + prelude
        + f"""
class Optimizer(_Honest):
    def __init__(self, dim, lower, upper, budget, seed):
        super().__init__(dim, lower, upper, budget, seed)
        self.first = {first}

    def ask(self):
        if self.first is not None:
            point, self.first = self.first, None
            return np.asarray(point, dtype=float)[None, :]
        return super().ask()
"""
    )


@pytest.fixture(scope="module")
def honest_blackbox() -> Evaluation:
    return _run(QuickBlackbox(), _seed(QuickBlackbox()))


def test_hashing_the_run_seed_recovers_no_problem(honest_blackbox: Evaluation) -> None:
    """Seeds used to be hashes of public names; now they come from the secret and match none."""
    prelude = """
import hashlib, ioh, sys
def _recover(seed):
    for f in range(1, 25):
        for i in range(1, 101):
            if int.from_bytes(hashlib.sha256(f"{f}/{i}".encode()).digest()[:4], "big") == seed:
                print("SNOOP seed", f, i, file=sys.stderr)
                return ioh.get_problem(f, instance=i, dimension=5).optimum.x
    return None
"""
    result = _run(QuickBlackbox(), _optimizer(prelude, "_recover(seed)"))
    assert _found(result) == []
    _no_better(result, honest_blackbox)


def test_recognising_the_problem_from_a_probe_finds_nothing(honest_blackbox: Evaluation) -> None:
    """One evaluation at the origin matched against ioh f1-24 x instances 1-15 (AOCC 0.999 when
    instances were public); the secret instance ids are not among them, so it learns nothing."""
    prelude = """
import ioh, sys
TABLE = {}
for _f in (1, 6, 8, 10, 15, 21):
    for _i in range(1, 16):
        _p = ioh.get_problem(_f, instance=_i, dimension=5)
        TABLE[round(float(_p([0.0] * 5)), 9)] = _p.optimum.x

class _Probe(_Honest):
    def __init__(self, *args):
        super().__init__(*args)
        self.probing, self.optimum = True, None

    def ask(self):
        if self.probing:
            return np.zeros((1, self.dim))
        if self.optimum is not None:
            point, self.optimum = self.optimum, None
            print("SNOOP recognised", file=sys.stderr)
            return np.asarray(point, dtype=float)[None, :]
        return super().ask()

    def tell(self, points, values):
        if self.probing:
            self.probing, self.optimum = False, TABLE.get(round(float(values[0]), 9))
        super().tell(points, values)
"""
    source = _seed(QuickBlackbox()).replace("class Optimizer:", "class _Honest:") + prelude + "\nOptimizer = _Probe\n"
    result = _run(QuickBlackbox(), source)
    assert result.status == "valid" and _found(result) == []
    assert result.score is not None and result.score < 0.9  # no recognised optimum on any run


def test_the_oracle_is_out_of_reach_and_the_budget_is_counted(honest_blackbox: Evaluation) -> None:
    """gc and frames hold no problem object; a batch past the budget is cut at the budget."""
    prelude = """
import gc, sys
def _oracle():
    found = []
    for o in gc.get_objects():
        try:
            if hasattr(o, "optimum") and hasattr(o, "meta_data"):
                found.append(o)
        except Exception:
            pass
    frame = sys._getframe()
    while frame is not None:
        found += [v for v in frame.f_locals.values() if hasattr(v, "optimum")]
        frame = frame.f_back
    if found:
        print("SNOOP oracle", file=sys.stderr)
        return found[0].optimum.x
    return None

class _Flood(_Honest):
    def ask(self):
        return self.rng.uniform(self.lower, self.upper, (50 * self.budget, self.dim))
"""
    result = _run(QuickBlackbox(), _optimizer(prelude, "_oracle()"))
    assert _found(result) == []
    _no_better(result, honest_blackbox)
    flood_source = (
        _seed(QuickBlackbox()).replace("class Optimizer:", "class _Honest:") + prelude + "\nOptimizer = _Flood\n"
    )
    flood = _run(QuickBlackbox(), flood_source)
    assert flood.status == "valid"  # 50x the budget asked, exactly the budget evaluated: random search
    random_search = next(b for b in QuickBlackbox().baselines() if b.name == "random_search")
    assert flood.score is not None and flood.score < _run(QuickBlackbox(), random_search.source).score + 0.05  # type: ignore[operator]


@pytest.mark.parametrize(
    ("ask", "why"),
    [
        ("[[0.0] * 5]", "must return an array"),
        ("np.zeros((1, 4))", "shape"),
        ("np.full((1, 5), np.nan)", "not a finite"),
    ],
)
def test_blackbox_points_of_the_wrong_type_are_invalid(ask: str, why: str) -> None:
    source = _seed(QuickBlackbox()).replace(
        "    def ask(self) -> np.ndarray:\n", f"    def ask(self) -> np.ndarray:\n        return {ask}\n"
    )
    result = _run(QuickBlackbox(), source)
    assert result.status == "invalid" and result.reason is not None and why in result.reason, result.reason


# ---------------------------------------------------------------------------------- TSP
@pytest.fixture(scope="module")
def honest_tsp() -> Evaluation:
    return _run(Tsp50(), _seed(Tsp50()))


def test_tsp_tour_written_by_the_candidate_is_never_read(honest_tsp: Evaluation) -> None:
    forged = {"stage": "tsp50", "tours": [list(range(50))] * 32}
    attack = f"import json\njson.dump({forged!r}, open('result.json', 'w'))\n" + _seed(Tsp50())
    result = _run(Tsp50(), attack)
    assert result.status == "valid" and result.score == honest_tsp.score


@pytest.mark.parametrize(
    ("returned", "why"),
    [
        ("True", "not an unvisited city"),
        ("float(min(unvisited_nodes))", "not an unvisited city"),
        ("current_node", "not an unvisited city"),
        ("2**70", "64 bits"),
        ("float('nan')", "not an unvisited"),
    ],
)
def test_tsp_choices_of_the_wrong_type_are_invalid(returned: str, why: str) -> None:
    signature = "def select_next_node(current_node, destination_node, unvisited_nodes, distance_matrix):\n"
    program = f"{signature}    return {returned}\n"
    result = _run(Tsp50(), program)
    assert result.status == "invalid" and result.reason is not None and why in result.reason, result.reason


@needs_separation
def test_tsp_reference_data_cannot_be_rewritten(honest_tsp: Evaluation) -> None:
    """The forged-reference attack that turned nearest neighbour's -23.34 into +98.77."""
    data = BENCHMARKS / "tsp_constructive" / "data" / "instances.json"
    before = hashlib.sha256(data.read_bytes()).hexdigest()
    attack = (
        SNOOP
        + f"""
import json as _j
_paths = [{str(data)!r}] + [_os.path.join(p, "benchmarks/tsp_constructive/data/instances.json") for p in _sys.path]
for _path in _paths:
    try:
        _d = _j.load(open(_path))
        for _cases in _d.values():
            for _c in _cases:
                _c["reference_length"] *= 10
        _j.dump(_d, open(_path, "w"))
        print("SNOOP rewrote", _path, file=_sys.stderr)
    except (OSError, ValueError):
        pass
_snoop(["instances.json"], {{"stage": "tsp50", "tours": []}})
"""
        + _seed(Tsp50())
    )
    result = _run(Tsp50(), attack)
    assert hashlib.sha256(data.read_bytes()).hexdigest() == before
    assert _found(result) == [] and result.score == honest_tsp.score


# ------------------------------------------------------------------------ circle packing
@pytest.mark.parametrize(
    ("returned", "why"),
    [
        ("{'sum_radii': 4.01}", "exactly (centers, radii)"),
        ("(centers, radii, 4.01)", "exactly (centers, radii)"),
        ("(np.full((n, 2), np.nan), radii)", "not finite"),
        ("(centers, np.full(n, np.inf))", "not finite"),
        ("(centers, [True] * n)", "not a finite number"),
        ("(centers, [2**70] * n)", "64 bits"),
        ("(centers, radii * 1e6)", "leaves the unit square"),
        ("b'x' * (40 * 2**20)", "exceeds the limit"),
        ("(centers, type('F', (float,), {'__float__': lambda s: 9.0})(1.0))", "cannot be sent"),
    ],
)
def test_circle_packing_output_is_only_data_checked_with_bounds(returned: str, why: str) -> None:
    task = load_task("circle_packing")
    program = _seed(task).replace("    return centers, radii\n", f"    return {returned}\n")
    assert program != _seed(task)
    result = _run(task, program)
    assert result.status == "invalid" and result.reason is not None and why in result.reason, result.reason


def test_circle_packing_forged_result_file_is_never_read() -> None:
    task = load_task("circle_packing")
    honest = _run(task, _seed(task))
    forged = {"stage": "pack", "n": 26, "returned": [[[0.5, 0.5]] * 26, [0.5] * 26]}
    attack = f"import json\njson.dump({forged!r}, open('result.json', 'w'))\n" + _seed(task)
    result = _run(task, attack)
    assert result.status == "valid" and result.score == honest.score


def test_every_builtin_task_but_openevolve_and_learning_tasks_is_judged() -> None:
    judged: Mapping[str, bool] = {
        name: load_task(name).judged
        for name in ("bin_packing", "tsp_constructive", "blackbox_optimizer", "circle_packing", "circle_packing_32")
    }
    assert all(judged.values()), judged


# ----------------------------------------------------------------------- OpenEvolve format
PATCH_EVALUATOR = """
import sys as _sys
_evaluator = _sys.modules.get("evaluator")
if _evaluator is not None:
    _evaluator.optimum = lambda instance: 1
"""


def _openevolve(tmp_path: Path, isolated: bool) -> Task:
    directory = tmp_path / ("isolated" if isolated else "shared")
    shutil.copytree(BENCHMARKS / "examples" / "knapsack_openevolve", directory)
    if isolated:
        config = directory / "config.yaml"
        config.write_text(config.read_text().replace("evaluator:\n", "evaluator:\n  isolate_program: true\n"))
    return load_task(str(directory))


def test_openevolve_default_mode_is_only_as_strong_as_its_evaluator(tmp_path: Path) -> None:
    """Shared mode says so, and the attack shows why: a program that patches the evaluator wins."""
    task = _openevolve(tmp_path, isolated=False)
    assert task.score_note is not None and "only as strong as that evaluator" in task.score_note
    honest = _run(task, _seed(task))
    forged = _run(task, PATCH_EVALUATOR + _seed(task))
    assert forged.score is not None and honest.score is not None and forged.score > honest.score


def test_openevolve_isolated_mode_runs_the_program_in_its_own_process(tmp_path: Path) -> None:
    task = _openevolve(tmp_path, isolated=True)
    assert task.judged and task.score_note is None
    honest = _run(task, _seed(task))
    assert honest.status == "valid" and honest.score == _run(_openevolve(tmp_path / "x", False), _seed(task)).score
    forged = _run(task, PATCH_EVALUATOR + "open('result.json', 'w').write('{\"combined_score\": 9}')\n" + _seed(task))
    assert forged.score == honest.score
    broken = _run(task, _seed(task) + "\ndef priority(value, weight):\n    raise ValueError('no')\n")
    assert broken.status == "invalid" and broken.reason is not None and "ValueError: no" in broken.reason


@pytest.mark.parametrize(
    ("forged", "why"),
    [
        ("lambda self, item: 0", "has no room"),
        ("lambda self, item: 10**9", "has no room"),
        ("lambda self, item: -1", "has no room"),
        ("lambda self, item: 0.0", "has no room"),
    ],
)
def test_a_rewritten_packer_cannot_overfill_a_bin(forged: str, why: str) -> None:
    """The candidate's side of the protocol (clade_packer.py) is the candidate's: the judge trusts no bin it names."""
    program = f"import clade_packer\nclade_packer.OnlinePacker.place = {forged}\n" + BEST_FIT
    result = _run(SmallBinPacking(), program)
    assert result.status == "invalid" and result.reason is not None and why in result.reason, result.reason
