"""The cluster settings of a run (`--cluster ray`, `--ray-address`, or the config file's keys)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import ConfigError, RunConfig, load_file, merge
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
