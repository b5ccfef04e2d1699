"""The store: content-addressed files, one evaluation per node, duplicates, LLM calls, live reads."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from archive import Archive, ArchiveError, code_hash
from archive.models import Blob, Evaluation, LLMCall
from tests.archive.conftest import add, new_run


def test_identical_files_are_stored_once_and_read_back_exactly(archive: Archive) -> None:
    run = new_run(archive)
    text = "def heuristic(x):\n    return x * 2  # ünïcode ✓\n" * 50
    first = add(archive, run, files={"program.py": text, "util.py": "A = 1\n"})
    second = add(archive, run, files={"program.py": text, "util.py": "A = 2\n"}, parents=[first])
    with archive.db.read() as session:
        blobs = session.scalar(select(func.count()).select_from(Blob))
        encodings = set(session.scalars(select(Blob.encoding)))
    assert blobs == 3
    assert "zlib" in encodings
    assert archive.files(first.id) == {"program.py": text, "util.py": "A = 1\n"}
    assert archive.files(second.id)["program.py"] == text
    assert second.code_size == len(text.encode()) + len(b"A = 2\n")


def test_an_evaluated_node_is_never_evaluated_again(archive: Archive) -> None:
    run = new_run(archive)
    node = add(archive, run, score=3.0, descriptors={"width": 2.0})
    assert node.descriptors == {"width": 2.0}
    assert node.evaluated_at is not None
    with pytest.raises(ArchiveError, match="already valid"):
        archive.record_evaluation(
            node.id, status="valid", score=9.0, metrics={}, feedback=None, wall_s=0, stages=[], sandbox="x"
        )
    with pytest.raises(ArchiveError, match="already valid"):
        archive.set_status(node.id, "running")
    assert archive.node(node.id).score == 3.0
    assert len(archive.evaluations(node.id)) == 1


def test_bad_descriptors_and_statuses_are_refused_before_anything_is_stored(archive: Archive) -> None:
    run = new_run(archive)
    node = add(archive, run, status="pending")
    for descriptors in ({"w": float("nan")}, {"w": "wide"}):
        with pytest.raises(ArchiveError, match="descriptor 'w'"):
            archive.record_evaluation(
                node.id,
                status="valid",
                score=1.0,
                metrics={},
                feedback=None,
                wall_s=0,
                stages=[{"stage": "full", "status": "valid"}],
                sandbox="x",
                descriptors=descriptors,
            )
    with pytest.raises(ArchiveError, match="pending or running"):
        archive.set_status(node.id, "valid")
    assert archive.node(node.id).status == "pending"
    assert archive.evaluations(node.id) == []


def test_running_records_when_the_evaluation_started(archive: Archive) -> None:
    run = new_run(archive)
    node = add(archive, run, status="running")
    assert node.status == "running" and node.started_at is not None
    assert [n.id for n in archive.unfinished(run.id)] == [node.id]


def test_duplicates_are_found_by_normalised_code_and_never_sampled(archive: Archive) -> None:
    run = new_run(archive)
    original = add(archive, run, files={"program.py": "def f(x):\n    return x+1\n"})
    layout_only = {"program.py": "# a comment\ndef f(x):\n\n    return (x + 1)\n"}
    assert archive.find_duplicate(run.id, code_hash(layout_only)) == original.id
    duplicate = add(archive, run, status="duplicate", files=layout_only, parents=[original])
    assert duplicate.status == "duplicate"
    population = archive.population(run.id)
    assert list(population.ids[population.valid]) == [original.id]
    assert list(population.evaluated) == [True, False]
    assert list(population.children) == [1, 0]
    other_run = new_run(archive)
    assert archive.find_duplicate(other_run.id, code_hash(layout_only)) is None


def test_llm_calls_are_stored_whole(archive: Archive) -> None:
    run = new_run(archive)
    node = add(archive, run)
    call_id = archive.record_llm_call(
        run_id=run.id,
        node_id=node.id,
        model="openai/gpt-x",
        prompt=[{"role": "user", "content": "improve"}],
        response="<<<SEARCH",
        prompt_tokens=10,
        completion_tokens=5,
        cost=0.25,
        latency_s=1.5,
        error=None,
    )
    with archive.db.read() as session:
        call = session.get(LLMCall, call_id)
        assert call is not None
        assert (call.model, call.prompt, call.completion_tokens, call.cost) == (
            "openai/gpt-x",
            [{"role": "user", "content": "improve"}],
            5,
            0.25,
        )


def test_runs_are_found_by_name_or_id_and_names_are_unique(archive: Archive) -> None:
    run = new_run(archive, name="alpha")
    assert archive.find_run("alpha").id == run.id == archive.find_run(str(run.id)).id
    assert archive.find_run().id == run.id
    with pytest.raises(ArchiveError, match="already exists"):
        new_run(archive, name="alpha")
    with pytest.raises(ArchiveError, match="no run with id or name 'beta'"):
        archive.find_run("beta")


def test_the_population_reads_a_live_run_written_by_another_process(archive_url: str) -> None:
    writer, reader = Archive.open(archive_url), Archive.open(archive_url)
    try:
        run = new_run(writer)
        seed = add(writer, run, score=1.0)
        assert list(reader.population(run.id).ids) == [seed.id]
        child = add(writer, run, status="running", parents=[seed])
        population = reader.population(run.id)
        assert list(population.ids[population.valid]) == [seed.id] and list(population.children) == [1, 0]
        writer.record_evaluation(
            child.id, status="valid", score=5.0, metrics={}, feedback=None, wall_s=0, stages=[], sandbox="x"
        )
        population = reader.population(run.id)
        assert list(population.ids) == [seed.id, child.id]
        assert list(population.scores) == [1.0, 5.0]
        assert reader.population(run.id) is population  # nothing changed: no rebuild
    finally:
        writer.close()
        reader.close()


def test_evaluation_stages_are_stored_one_row_each(archive: Archive) -> None:
    run = new_run(archive)
    node = add(archive, run, status="pending")
    archive.record_evaluation(
        node.id,
        status="valid",
        score=2.0,
        metrics={"m": 1.0},
        feedback=None,
        wall_s=1.0,
        stages=[
            {"stage": "quick", "status": "valid", "score": 1.0},
            {"stage": "full", "status": "valid", "score": 2.0},
        ],
        sandbox="process",
    )
    assert [e.stage for e in archive.evaluations(node.id)] == ["quick", "full"]
    with archive.db.read() as session:
        assert session.scalar(select(func.count()).select_from(Evaluation)) == 2
