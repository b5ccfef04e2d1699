"""`clade doctor`: what is configured and reachable here (Docker, GPU, the LLM, the database),
as one document of checks, each `{"ok": bool, "detail": str}`."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

from agent.config import ConfigError
from archive.errors import ArchiveError


def doctor_checks(
    db: str | None, config: Path | None, model: list[str] | None, api_base: str | None, api_key_env: str | None
) -> dict[str, dict[str, Any]]:
    from sandboxes import docker_backend

    ready, why = docker_backend.probe()
    checks: dict[str, dict[str, Any]] = {
        "docker": {"ok": ready, "detail": why},
        "gpu": gpu_check(),
        "llm": llm_check(config, model, api_base, api_key_env),
    }
    checks["database"], well_formed = database_check(db)
    if well_formed is not None:
        checks["llm"]["well_formed"] = well_formed
    return checks


def database_check(db: str | None) -> tuple[dict[str, Any], list[dict[str, Any]] | None]:
    """The database check, and the archive's LLM call statistics when there is one."""
    from archive.database import ArchiveMissing
    from archive.store import ReadStore

    try:
        archive = ReadStore.inspect(db)
        where = archive.engine.url.render_as_string(hide_password=True)
        runs = count(len(archive.list_runs()), "run")
        return {"ok": True, "detail": f"{where} ({runs})"}, [row.to_json() for row in archive.llm_call_stats()]
    except ArchiveMissing as exc:  # looking must not create one: say so and how one comes about
        return {"ok": False, "detail": f"not found: no archive at {exc.path} (`clade run TASK` creates it)"}, None
    except ArchiveError as exc:
        return {"ok": False, "detail": str(exc)}, None


def count(number: int, noun: str) -> str:
    """`1 run`, `2 runs`."""
    return f"{number} {noun}" + ("" if number == 1 else "s")


def llm_check(
    config: Path | None, model: list[str] | None, api_base: str | None, api_key_env: str | None
) -> dict[str, Any]:
    from agent.config import load_file, merge

    try:
        base = load_file(config) if config else {}
        settings = merge(
            {"task": "-", **base}, {"model": model or None, "api_base": api_base, "api_key_env": api_key_env}
        )
    except ConfigError as exc:
        return {"ok": False, "detail": str(exc)}
    if not settings.models:
        return {"ok": True, "detail": "no model configured: runs use the offline mutator (pass --model to check one)"}
    from agent.llm_check import check_llm

    ok, detail = check_llm(settings)
    return {"ok": ok, "detail": detail}


def gpu_check() -> dict[str, Any]:
    if shutil.which("nvidia-smi") is None:
        return {"ok": False, "detail": "no nvidia-smi: CPU only"}
    try:
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"ok": False, "detail": f"nvidia-smi failed: {exc}"}
    gpus = [line for line in listing.stdout.splitlines() if line.startswith("GPU")]
    return {"ok": bool(gpus), "detail": "; ".join(gpus) or listing.stderr.strip() or "no GPU listed"}
