"""The image recipe: the offline build's mirror comes from apt's sources; tags follow contents."""

from __future__ import annotations

from pathlib import Path

from sandboxes import image

DEB822 = """\
Types: deb
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
"""

ONE_LINE = """\
# deb http://commented.example/debian bookworm main
deb-src http://src.example/debian bookworm main
deb [arch=amd64 signed-by=/usr/share/keyrings/k.gpg] http://line.example/debian bookworm main
"""


def test_the_mirror_is_the_first_deb_source_for_the_suite() -> None:
    assert image.parse_mirror([DEB822]) == "http://mirror.example/debian"
    assert image.parse_mirror([ONE_LINE]) == "http://line.example/debian"
    assert image.parse_mirror(["Types: deb\nURIs: http://x/debian\nSuites: trixie\n"]) is None


def test_the_mirror_is_read_from_sources_list_d(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(DEB822)
    assert image.apt_mirror(tmp_path) == "http://mirror.example/debian"
    assert image.apt_mirror(tmp_path / "nowhere") is None


def test_derived_tags_follow_the_packages_and_their_contents(tmp_path: Path) -> None:
    wheel = tmp_path / "pkg.whl"
    wheel.write_bytes(b"one")
    first = image.derived_tag("base:1", ["b", str(wheel), "a"])
    assert first == image.derived_tag("base:1", ["a", str(wheel), "b"])
    assert first != image.derived_tag("base:2", ["a", str(wheel), "b"])
    wheel.write_bytes(b"two")
    assert first != image.derived_tag("base:1", ["a", str(wheel), "b"])


def test_the_base_tag_names_the_recipe() -> None:
    assert image.base_tag() == f"{image.REPOSITORY}:{image.recipe_hash()}"
    assert len(image.recipe_hash()) == 12


def test_both_ways_install_the_same_numpy() -> None:
    """The Dockerfile and the offline build put the same numpy release in the image."""
    assert f"pip install --no-cache-dir {image.NUMPY}\n" in image.DOCKERFILE.read_text()
    assert "python3-numpy" not in image.DEBIAN_PACKAGES  # Debian bookworm's numpy is an older release


def test_wheel_options_ask_for_the_images_python_on_this_architecture() -> None:
    options = image.wheel_options()
    assert options[options.index("--python-version") + 1] == "3.11"
    assert "--only-binary=:all:" in options
    platforms = options[options.index("--platform") + 1 :: 2]
    assert platforms and all(name.endswith(image.platform.machine()) for name in platforms)
