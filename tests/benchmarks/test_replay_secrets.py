"""Replay reuses each stage's recorded secret (fresh instances, hidden BBOB instance ids), and a
node recorded before secrets were stored still replays, saying that its instances were redrawn."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from agent.replay import replay_node, replay_report
from archive import Archive
from benchmarks import evaluate, load_task
from sandboxes.process import ProcessSandbox


def _record(archive: Archive, run_id: int, files: dict[str, str], result: object, with_secrets: bool) -> int:
    node = archive.add_node(run_id=run_id, files=files, iteration=0)
    stages = [
        {"stage": s.stage, "status": s.status, "score": s.score, **({"secret": s.secret} if with_secrets else {})}
        for s in result.stages  # type: ignore[attr-defined]
    ]
    archive.record_evaluation(
        node.id,
        status=result.status,  # type: ignore[attr-defined]
        score=result.score,  # type: ignore[attr-defined]
        metrics=dict(result.metrics),  # type: ignore[attr-defined]
        feedback=None,
        wall_s=1.0,
        stages=stages,
        sandbox="process",
    )
    return node.id


def test_replay_reuses_recorded_secrets_and_says_when_there_were_none(tmp_path: Path) -> None:
    task = load_task("blackbox_optimizer")
    program = {
        **task.seed_files(),
        task.main_file: next(b for b in task.baselines() if b.name == "random_search").source,
    }
    result = evaluate(task, program, ProcessSandbox())
    assert result.status == "valid" and set(result.secrets) == {"quick", "full"}
    archive = Archive.open(str(tmp_path / "replay.db"))
    run = archive.create_run(name="r", task=task.name, task_hash=task.content_hash(), config={}, seed=0, iterations=1)
    recorded = _record(archive, run.id, program, result, with_secrets=True)
    legacy = _record(archive, run.id, program, result, with_secrets=False)
    assert archive.stage_secrets(recorded) == result.secrets and archive.stage_secrets(legacy) == {}

    faithful = replay_node(archive, recorded, "process")
    assert faithful.match and faithful.secrets_recorded
    assert faithful.evaluation.secrets == result.secrets
    assert faithful.evaluation.metrics == result.metrics  # the same hidden instances, the same points

    old = replay_node(archive, legacy, "process")
    assert old.evaluation.status == "valid" and not old.secrets_recorded
    assert old.evaluation.secrets != result.secrets and old.to_json()["secrets"] == "fresh"
    console = Console(record=True, width=200)
    console.print(replay_report(old))
    assert "before stage secrets were recorded" in console.export_text()
    archive.close()
