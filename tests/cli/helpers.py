"""Driving `clade` in tests: in-process through Typer's runner, or as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from cli import app

REPO = Path(__file__).parents[2]


def invoke(*args: str) -> Any:
    """Run `clade ARGS` in-process; returns Click's Result (stdout, stderr, exit_code)."""
    return CliRunner().invoke(app, list(args))


def invoke_json(*args: str) -> Any:
    result = invoke(*args, "--json")
    assert result.exit_code == 0, result.stderr or result.stdout
    return json.loads(result.stdout)


def clade(*args: str, timeout: float = 300, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run `clade ARGS` as a real process, the way a user's shell does."""
    return subprocess.run(
        [sys.executable, "-m", "cli", *args], capture_output=True, text=True, timeout=timeout, cwd=cwd or REPO
    )
