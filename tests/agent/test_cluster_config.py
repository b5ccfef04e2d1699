"""The cluster settings of a run (`--cluster ray`, `--ray-address`, or the config file's keys)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from agent.config import ConfigError, RunConfig, load_file, merge, ray_build_image
from tests.cli.helpers import invoke


def test_the_config_file_sets_the_cluster_and_the_snapshot_keeps_it(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text('task = "bin_packing"\ncluster = "ray"\nray_address = "ray://head.example:10001"\n')
    config = merge(load_file(path), {"cluster": None, "ray_address": None})
    assert (config.cluster, config.ray_address) == ("ray", "ray://head.example:10001")
    assert RunConfig.from_json(config.to_json()) == config  # `clade resume` rejoins the same cluster
    assert merge(None, {"task": "bin_packing"}).cluster is None  # one machine by default


@pytest.mark.parametrize(
    ("values", "says"),
    [
        ({"cluster": "slurm"}, "cluster must be `ray`"),
        ({"cluster": "ray", "ray_address": "http://head:10001"}, "ray://HOST:PORT"),
        ({"cluster": "ray", "ray_address": "head"}, "HOST:PORT"),
        ({"ray_address": "ray://head:10001"}, "add --cluster ray"),
    ],
)
def test_bad_cluster_settings_are_refused(values: dict[str, str], says: str) -> None:
    with pytest.raises(ConfigError, match=says.replace("(", r"\(")):
        merge(None, {"task": "bin_packing", **values})


def test_a_bad_ray_address_on_the_command_line_is_exit_2(db_path: str) -> None:
    result = invoke("run", "bin_packing", "--cluster", "ray", "--ray-address", "nowhere", "--db", db_path)
    assert result.exit_code == 2
    assert "ray://HOST:PORT" in result.stderr and "Traceback" not in result.stderr
    assert not Path(db_path).exists() or "bin_packing" not in invoke("runs", "--db", db_path).stdout


def test_building_the_sandbox_image_on_ray_nodes_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLADE_RAY_BUILD_IMAGE", raising=False)
    config = merge(None, {"task": "bin_packing", "cluster": "ray"})
    assert ray_build_image(config)  # on by default: a node without the image builds it once
    off = dataclasses.replace(config, extra={"ray": {"build_image": False}})
    assert not ray_build_image(off)
    assert RunConfig.from_json(off.to_json()) == off  # `clade resume` keeps it
    monkeypatch.setenv("CLADE_RAY_BUILD_IMAGE", "0")
    assert not ray_build_image(config)
    with pytest.raises(ConfigError, match="build_image must be true or false"):
        dataclasses.replace(config, extra={"ray": {"build_image": "no"}})
