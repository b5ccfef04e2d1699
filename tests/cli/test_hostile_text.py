"""Text that candidates, models and users wrote is shown as text: Rich markup never parsed,
terminal escapes written out (ESC as \\x1b), through the real `clade` process and a real sandbox,
and through the inspection commands on an archive that stores such text."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from archive import Archive
from tests.archive.test_views import program
from tests.cli.helpers import REPO, clade

# Markup that raises MarkupError when parsed, markup that would style or link, and the escapes a
# terminal acts on: OSC 0 (window title) ended by BEL, OSC 8 (hyperlink), CSI (clear, colour), CR,
# a one-byte C1 CSI, a right-to-left override that reorders what is shown; and HTML for the pages.
HOSTILE = (
    "boom [/] [bold red]x[/] [link=http://evil]y[/link] <img src=x onerror=alert(1)> \x1b]0;pwned\x07 "
    "\x1b]8;;http://evil\x1b\\z\x1b[2J\x1b[31mred\r\x9b2J\u202eab"
)
ESCAPES = ("\x1b", "\x07", "\x9b", "\u202e", "\r")


def assert_shown_as_text(output: str) -> None:
    for char in ESCAPES:
        assert char not in output, f"raw {char!r} reached the output"
    assert "\\x1b]0;pwned\\x07" in output and "\\x1b[2J" in output and "\\x9b" in output and "\\u202e" in output
    assert "[/]" in output and "[bold red]x[/]" in output and "[link=http://evil]" in output
    assert "Traceback" not in output and "MarkupError" not in output


def test_eval_shows_candidate_stderr_as_text(tmp_path: Path) -> None:
    hostile = tmp_path / "loud.py"
    line = HOSTILE.replace("\r", "")  # a CR would end the line the reason quotes (the last one)
    hostile.write_text(f"import sys\nsys.stderr.write({line!r} + '\\n')\nraise SystemExit(3)\n")
    result = clade("eval", "circle_packing", str(hostile), "--sandbox", "process")
    assert result.returncode == 1, result.stderr
    assert "reason:" in result.stdout and "SystemExit: 3" in result.stdout
    assert_shown_as_text(result.stdout + result.stderr)


def test_eval_of_a_radius_beyond_a_float_is_a_failed_evaluation_with_a_reason(tmp_path: Path) -> None:
    hostile = tmp_path / "huge.py"
    hostile.write_text("def pack_circles(n):\n    return [[0.5, 0.5] for _ in range(n)], [10**400] + [0.0] * (n - 1)\n")
    result = clade("eval", "circle_packing", str(hostile), "--sandbox", "process", "--json")
    assert result.returncode == 1, result.stderr
    doc = json.loads(result.stdout)
    assert doc["status"] in ("invalid", "error") and doc["score"] is None
    assert "does not fit" in doc["reason"]
    assert "Traceback" not in result.stderr


def test_eval_of_a_deeply_nested_reply_is_a_failed_evaluation_with_a_reason(tmp_path: Path) -> None:
    hostile = tmp_path / "deep.py"
    hostile.write_text(
        "def pack_circles(n):\n    deep = []\n    for _ in range(100000):\n"
        "        deep = [deep]\n    return deep, deep\n"
    )
    result = clade("eval", "circle_packing", str(hostile), "--sandbox", "process")
    assert result.returncode == 1
    assert "nested deeper than" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr and "RecursionError" not in result.stdout + result.stderr


def test_eval_of_a_result_file_the_candidate_wrote_itself_is_not_read(tmp_path: Path) -> None:
    # The judge writes the result; a deeply nested result.json in the candidate's directory is never read.
    hostile = tmp_path / "deep.py"
    hostile.write_text("import os\nopen('result.json', 'w').write('[' * 100000 + ']' * 100000)\nos._exit(0)\n")
    result = clade("eval", "circle_packing", str(hostile), "--sandbox", "process")
    assert result.returncode == 1
    assert "ended while importing the program" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr and "RecursionError" not in result.stdout + result.stderr


@pytest.fixture()
def hostile_db(tmp_path: Path) -> tuple[str, int]:
    """A run whose name, model, feedback, stage reason and stderr hold the hostile text."""
    db = str(tmp_path / "hostile.db")
    archive = Archive.open(db)
    run = archive.create_run(
        name=f"r{HOSTILE}", task="bin_packing", task_hash="t", config={"task": "bin_packing"}, seed=0, iterations=3
    )
    seed = archive.add_node(
        run_id=run.id, files=program(1.0), iteration=0, parent_ids=[], generation=0, operator="seed", status="pending"
    )
    archive.record_evaluation(
        seed.id,
        status="valid",
        score=-4.7,
        metrics={"excess_pct": 4.7},
        feedback=None,
        wall_s=1.0,
        stages=[],
        sandbox="process",
    )
    child = archive.add_node(
        run_id=run.id,
        files={"program.py": program(1.1)["program.py"] + f"# {HOSTILE}\n"},
        iteration=1,
        parent_ids=[seed.id],
        generation=1,
        operator="diff",
        model=f"m{HOSTILE}",
        edit_format="diff",
        status="pending",
    )
    stage: dict[str, Any] = {
        "stage": "full",
        "status": "error",
        "score": None,
        "metrics": {},
        "reason": f"stage full: exited with code 3: {HOSTILE}",
        "exit_code": 3,
        "timed_out": False,
        "out_of_memory": False,
        "stdout_tail": "",
        "stderr_tail": HOSTILE,
        "wall_s": 0.5,
        "peak_memory_mb": None,
    }
    archive.record_evaluation(
        child.id,
        status="error",
        score=None,
        metrics={},
        feedback=HOSTILE,
        wall_s=0.5,
        stages=[stage],
        sandbox=f"process{HOSTILE}",
    )
    call = archive.record_llm_call(
        run_id=run.id, model=f"m{HOSTILE}", prompt=[], response=f"Here is the change.\n{HOSTILE}\n", edit_format="diff"
    )
    archive.link_llm_calls(child.id, [call], produced_by=call)
    archive.close()
    return db, child.id


@pytest.mark.parametrize(
    "args",
    [
        ("show", "{node}"),
        ("show", "{node}", "--reply"),
        ("tree",),
        ("status",),
        ("runs",),
        ("diff", "{node}"),
        ("best",),
    ],
    ids=lambda args: " ".join(args),
)
def test_inspection_shows_stored_text_as_text(hostile_db: tuple[str, int], args: tuple[str, ...]) -> None:
    db, node = hostile_db
    result = clade(*(arg.format(node=node) for arg in args), "--db", db)
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    for char in ESCAPES:
        assert char not in output, f"raw {char!r} reached the output"
    assert "Traceback" not in output and "MarkupError" not in output
    if args[0] in ("show", "tree", "diff"):  # these show the hostile text itself, unwrapped
        assert "\\x1b]0;pwned\\x07" in output and "[/]" in output
    if "--reply" in args:  # the model's reply, after the feedback
        assert output.count("\\x1b]0;pwned\\x07") >= 3 and "Here is the change." in output
    elif args[0] == "runs":  # the name, wrapped in a table cell
        assert "\\x1b" in output and "[/" in output


def test_json_output_escapes_control_characters(hostile_db: tuple[str, int]) -> None:
    db, node = hostile_db
    result = clade("show", str(node), "--db", db, "--json")
    assert result.returncode == 0
    assert not any(char in result.stdout for char in ESCAPES)
    doc = json.loads(result.stdout)
    assert doc["feedback"] == HOSTILE  # escaped in transit, exact once parsed


def test_html_report_escapes_markup_and_writes_control_characters_out(
    hostile_db: tuple[str, int], tmp_path: Path
) -> None:
    db, _ = hostile_db
    page = tmp_path / "report.html"
    result = clade("report", "--db", db, "--out", str(page))
    assert result.returncode == 0, result.stderr
    html = page.read_text()
    assert "\x1b" not in html and "\x07" not in html and "\u202e" not in html
    assert "<title>Cladeforge · r" in html and "\\x1b" in html.split("</title>")[0]
    assert "const esc = (s) => visible(s)" in html  # every esc() of stored text writes controls out


def test_an_error_message_echoing_user_input_is_not_markup(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    Archive.open(str(db)).close()
    result = clade("tree", "[/]", "--db", str(db))
    assert result.returncode == 2
    assert "no run with id or name '[/]'" in result.stderr
    assert "Traceback" not in result.stderr and "MarkupError" not in result.stderr
    result = clade("tree", "\x1b]0;x\x07", "--db", str(db))
    assert result.returncode == 2 and "\x1b" not in result.stderr and "\\x1b" in result.stderr


@pytest.mark.parametrize("command", ["show", "show --reply", "tree", "status", "diff", "runs"])
def test_on_a_terminal_the_stored_escapes_do_not_reach_it_either(hostile_db: tuple[str, int], command: str) -> None:
    """With Rich drawing for a terminal (its own styling escapes), the stored ones stay written out."""
    db, node = hostile_db
    name, *rest = command.split()
    args = [name, str(node), *rest] if name in ("show", "diff") else [name]
    env = {**os.environ, "FORCE_COLOR": "1", "COLUMNS": "200"}
    result = subprocess.run(
        [sys.executable, "-m", "cli", *args, "--db", db], capture_output=True, text=True, timeout=120, cwd=REPO, env=env
    )
    assert result.returncode == 0, result.stderr
    assert "\x1b[" in result.stdout  # it did draw for a terminal
    for attack in ("\x1b]0;pwned", "\x1b]8;;", "\x1b[2J", "\x07", "\x9b", "\u202e"):
        assert attack not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_the_report_page_in_a_browser_shows_stored_text_as_text(hostile_db: tuple[str, int], tmp_path: Path) -> None:
    from tests.cli.test_report_browser import browse

    db, node = hostile_db
    page = tmp_path / "report.html"
    assert clade("report", "--db", db, "--out", str(page)).returncode == 0
    dom = browse(tmp_path, f"file://{page}#node={node}&tab=code", "--dump-dom")
    assert f'data-detail-loaded="{node}"' in dom  # the node's feedback, reason and code were drawn
    # What the page drew, without its inline data (JSON, escaped, in a script element never run).
    dom = re.sub(r'<script[^>]*id="clade-data"[^>]*>.*?</script>', "", dom, flags=re.S)
    for char in ESCAPES:
        assert char not in dom, f"raw {char!r} reached the page"
    assert "<img src=x" not in dom and "&lt;img src=x onerror=alert(1)&gt;" in dom
    assert "\\x1b]0;pwned\\x07" in dom and "\\u202eab" in dom and "[bold red]x[/]" in dom
