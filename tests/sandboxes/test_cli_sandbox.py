"""`clade sandbox build` and `clade sandbox check`: JSON documents, bad input, honest reports."""

from __future__ import annotations

import contextlib
import json
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from tests.sandboxes.conftest import docker_unusable

runner = CliRunner()


def test_an_unknown_build_method_is_bad_input_without_a_traceback() -> None:
    result = runner.invoke(app, ["sandbox", "build", "--method", "fromthinair"])
    assert result.exit_code == 2
    assert "unknown build method 'fromthinair'" in result.output
    assert "Traceback" not in result.output


def test_check_reports_every_backend_as_json() -> None:
    result = runner.invoke(app, ["sandbox", "check", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert set(doc) == {"docker", "process", "auto"}
    assert "engine" in doc["docker"] and doc["process"]["backend"] == "process"
    why = docker_unusable()
    if why is None:
        assert doc["docker"]["image"]["ok"] and doc["auto"].startswith("docker sandbox")
        assert all(verdict["ok"] for verdict in doc["docker"]["enforced"].values()), doc["docker"]["enforced"]
    else:
        assert doc["auto"].startswith("process sandbox")


def test_build_is_a_no_op_when_the_image_exists() -> None:
    why = docker_unusable()
    if why:
        pytest.skip(f"docker backend not tested: {why}")
    result = runner.invoke(app, ["sandbox", "build", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["method"] == "present" and doc["tag"].startswith("cladeforge-sandbox:")


def test_doctor_uses_the_docker_probe() -> None:
    result = runner.invoke(app, ["doctor", "--json"])
    assert result.exit_code == 0, result.output
    docker = json.loads(result.stdout)["docker"]
    assert docker["ok"] is (docker_unusable() is None)


@pytest.mark.docker
def test_prune_removes_derived_and_stale_images_and_keeps_the_base(tmp_path: Path) -> None:
    why = docker_unusable()
    if why:
        pytest.skip(f"docker backend not tested: {why}")
    from sandboxes import engine, image

    client = engine.connect()
    base = image.base_tag()
    token = uuid.uuid4().hex[:8]
    derived, stale = f"{image.REPOSITORY}:{image.DERIVED_PREFIX}test{token}", f"{image.REPOSITORY}:old{token}"
    (tmp_path / "Dockerfile").write_text(f"FROM {base}\nLABEL {image.DERIVED_LABEL}={base}\n")
    client.images.build(path=str(tmp_path), tag=derived, rm=True)
    client.images.get(base).tag(image.REPOSITORY, f"old{token}")  # a base of another recipe, as after an upgrade
    mine = {derived, stale}
    try:
        # The command lists both (a dry run: other tests here may be using their own derived images).
        listed = runner.invoke(app, ["sandbox", "prune", "--dry-run", "--json"])
        assert listed.exit_code == 0, listed.output
        kinds = {row["tag"]: row["kind"] for row in json.loads(listed.stdout)}
        assert kinds[derived] == "derived" and kinds[stale] == "stale" and base not in kinds
        assert image.exists(client, derived)
        pruned = image.prune(client, only=mine.__contains__)
        assert {(p.tag, p.removed) for p in pruned} == {(derived, True), (stale, True)}
        assert not image.exists(client, derived) and not image.exists(client, stale)
        assert image.exists(client, base)  # the current base stays
    finally:
        for tag in mine:
            with contextlib.suppress(Exception):
                client.images.remove(tag)
