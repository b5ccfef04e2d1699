"""`clade sandbox build` and `clade sandbox check`: JSON documents, bad input, honest reports."""

from __future__ import annotations

import json

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
