"""The sandbox image: built once per recipe, tagged by a hash of what it contains.

Two ways to the same contents (Python 3.11 and numpy):

- `dockerfile`: `docker build` of `sandboxes/Dockerfile` (python:3.11-slim), when a registry
  answers;
- `debootstrap`: offline, a minimal Debian root file system with python3, made with debootstrap
  from the mirror this machine's apt already uses, plus numpy's wheel from the package index
  (the host's pip installs it into the root file system), then `docker import`ed.
  The root file system tarball is cached (~/.cache/cladeforge) so a rebuild only re-imports.

Tasks that declare extra Python packages get a derived image: the base plus the packages
installed by the host's pip into /opt/clade/site, tagged by a hash of the base and the
package list (and, for a local directory, its contents), built the first time it is needed.
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandboxes.base import SandboxError

RECIPE_VERSION = "2"
REPOSITORY = "cladeforge-sandbox"
SUITE = "bookworm"
DEBIAN_PACKAGES = ("python3",)
NUMPY = "numpy==2.4.6"
"""The image's numpy, the same release on both ways (and as the Dockerfile's): PyPI's wheel, not
Debian's 1.24, whose small-array calls are slower and whose results may differ from the host's."""
SITE_PACKAGES = "usr/local/lib/python3.11/dist-packages"
"""Where the debootstrap way installs numpy: on Debian's python3 path, with no pip in the image."""
DOCKERFILE = Path(__file__).with_name("Dockerfile")
RECIPE_LABEL = "org.cladeforge.recipe"
METHOD_LABEL = "org.cladeforge.method"
DERIVED_LABEL = "org.cladeforge.derived-from"
DERIVED_PREFIX = "pkg-"
SITE = "/opt/clade/site"
METHODS = ("auto", "dockerfile", "debootstrap")
BUILD_TIMEOUT_S = 1800
TRIM = ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man", "usr/share/locale")

Log = Callable[[str], None]


def cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "cladeforge"


def recipe_hash() -> str:
    """A hash of everything that decides the base image's contents."""
    digest = hashlib.sha256(f"{RECIPE_VERSION}\0{SUITE}\0{','.join(DEBIAN_PACKAGES)}\0{NUMPY}\0".encode())
    digest.update(DOCKERFILE.read_bytes())
    return digest.hexdigest()[:12]


def base_tag() -> str:
    return f"{REPOSITORY}:{recipe_hash()}"


def exists(client: Any, tag: str) -> bool:
    import docker.errors

    try:
        client.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    return True


@dataclass(frozen=True)
class Built:
    tag: str
    method: str
    """`dockerfile`, `debootstrap`, or `present` when the image already existed."""
    seconds: float


def build(client: Any, method: str = "auto", force: bool = False, log: Log = print) -> Built:
    """Make the base image unless it exists (or `force`); raise SandboxError when neither way works."""
    if method not in METHODS:
        raise SandboxError(f"unknown build method {method!r}; choose one of {', '.join(METHODS)}")
    tag, started = base_tag(), time.monotonic()
    if not force and exists(client, tag):
        return Built(tag, "present", 0.0)
    problems = []
    if method in ("auto", "dockerfile"):
        try:
            _build_dockerfile(client, tag, log)
            return Built(tag, "dockerfile", time.monotonic() - started)
        except SandboxError as exc:
            if method == "dockerfile":
                raise
            problems.append(str(exc))
            log(f"{exc}; building offline with debootstrap")
    try:
        _build_debootstrap(client, tag, log)
    except SandboxError as exc:
        problems.append(str(exc))
        raise SandboxError("cannot build the sandbox image: " + "; ".join(problems)) from None
    return Built(tag, "debootstrap", time.monotonic() - started)


def _build_dockerfile(client: Any, tag: str, log: Log) -> None:
    import docker.errors

    base = re.search(r"^FROM\s+(\S+)", DOCKERFILE.read_text(), re.MULTILINE)
    try:
        if base:
            log(f"pulling {base.group(1)}")
            client.images.pull(base.group(1))
        log(f"docker build {tag}")
        client.images.build(
            path=str(DOCKERFILE.parent),
            dockerfile=DOCKERFILE.name,
            tag=tag,
            labels={RECIPE_LABEL: recipe_hash(), METHOD_LABEL: "dockerfile"},
            rm=True,
            forcerm=True,
        )
    except docker.errors.APIError as exc:
        raise SandboxError(f"registry unreachable or build failed ({str(exc.explanation or exc)[:300]})") from None
    except docker.errors.BuildError as exc:
        raise SandboxError(f"docker build failed: {str(exc)[:300]}") from None


def parse_mirror(texts: Iterable[str], suite: str = SUITE) -> str | None:
    """The first Debian mirror for `suite` in apt source files (deb822 `.sources` or `.list`)."""
    for text in texts:
        for stanza in re.split(r"\n\s*\n", text):
            fields = dict(re.findall(r"^([A-Za-z-]+):\s*(.*)$", stanza, re.MULTILINE))
            if "deb" in fields.get("Types", "").split() and suite in fields.get("Suites", "").split():
                uris = fields.get("URIs", "").split()
                if uris:
                    return uris[0]
        for line in text.splitlines():
            words = re.sub(r"\[[^\]]*\]", " ", line.split("#", 1)[0]).split()  # drop [options]
            if len(words) >= 3 and words[0] == "deb" and words[2] == suite:
                return words[1]
    return None


def apt_mirror(etc_apt: Path = Path("/etc/apt")) -> str | None:
    """This machine's Debian mirror, read from its apt sources at run time."""
    files = [*sorted((etc_apt / "sources.list.d").glob("*.sources")), etc_apt / "sources.list"]
    files += sorted((etc_apt / "sources.list.d").glob("*.list"))
    texts = []
    for path in files:
        try:
            texts.append(path.read_text())
        except OSError:
            continue
    return parse_mirror(texts)


def rootfs_tarball() -> Path:
    recipe = f"{RECIPE_VERSION}\0{SUITE}\0{','.join(DEBIAN_PACKAGES)}\0{NUMPY}"
    digest = hashlib.sha256(recipe.encode()).hexdigest()[:12]
    return cache_dir() / f"rootfs-{SUITE}-{digest}.tar"


def _build_debootstrap(client: Any, tag: str, log: Log) -> None:
    tarball = rootfs_tarball()
    if not tarball.exists():
        _make_rootfs(tarball, log)
    log(f"docker import {tarball} as {tag}")
    try:
        client.api.import_image_from_file(
            str(tarball),
            repository=REPOSITORY,
            tag=tag.split(":", 1)[1],
            changes=[
                "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "ENV LANG=C.UTF-8",
                "WORKDIR /work",
                f"LABEL {RECIPE_LABEL}={recipe_hash()} {METHOD_LABEL}=debootstrap",
            ],
        )
    except Exception as exc:
        raise SandboxError(f"docker import failed: {exc}") from None
    if not exists(client, tag):
        raise SandboxError("docker import finished but the image is not there")


def _make_rootfs(tarball: Path, log: Log) -> None:
    tool = shutil.which("debootstrap") or ("/usr/sbin/debootstrap" if Path("/usr/sbin/debootstrap").exists() else None)
    if tool is None:
        raise SandboxError("debootstrap is not installed (apt-get install debootstrap)")
    if os.geteuid() != 0:
        raise SandboxError("debootstrap needs root")
    mirror = apt_mirror()
    if mirror is None:
        raise SandboxError("no Debian mirror for bookworm in /etc/apt/sources.list(.d)")
    tarball.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=tarball.parent, prefix="rootfs-build-") as scratch:
        root = Path(scratch) / "root"
        log(f"debootstrap {SUITE} from {mirror} (a few minutes)")
        command = [tool, "--variant=minbase", f"--include={','.join(DEBIAN_PACKAGES)}", SUITE, str(root), mirror]
        done = subprocess.run(command, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
        if done.returncode != 0:
            tail = (done.stdout + done.stderr).strip().splitlines()[-3:]
            raise SandboxError(f"debootstrap failed: {' / '.join(tail)}")
        _install_numpy(root / SITE_PACKAGES, log)
        for rel in TRIM:
            shutil.rmtree(root / rel, ignore_errors=True)
        partial = tarball.with_suffix(".partial")
        subprocess.run(["tar", "--numeric-owner", "-C", str(root), "-cf", str(partial), "."], check=True)
        partial.rename(tarball)


def wheel_options() -> list[str]:
    """pip options that take wheels made for the image's Python (3.11, CPython) on this machine's
    architecture, whatever the host's interpreter."""
    machine = platform.machine()
    options = ["--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp"]
    return [*options, "--platform", f"manylinux2014_{machine}", "--platform", f"manylinux_2_28_{machine}"]


def _install_numpy(site: Path, log: Log) -> None:
    """The host's pip puts NUMPY's wheel into the root file system (from the package index)."""
    log(f"installing {NUMPY} into the root file system")
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps"]
    command += ["--target", str(site), *wheel_options(), NUMPY]
    done = subprocess.run(command, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-2:]
        raise SandboxError(f"cannot install {NUMPY} for the image: {' / '.join(tail)}")


_derive_lock = threading.Lock()


def derived_tag(base: str, packages: Iterable[str]) -> str:
    """The tag of `base` plus `packages`: a hash of both (and of local packages' files)."""
    digest = hashlib.sha256(base.encode())
    for spec in sorted(set(packages)):
        digest.update(b"\0" + spec.encode())
        local = Path(spec)
        if local.is_file():  # a wheel or an archive
            digest.update(local.read_bytes())
        elif local.is_dir():
            for path in sorted(p for p in local.rglob("*") if p.is_file()):
                digest.update(str(path.relative_to(local)).encode() + b"\0" + path.read_bytes())
    return f"{REPOSITORY}:{DERIVED_PREFIX}{digest.hexdigest()[:12]}"


def ensure_derived(client: Any, base: str, packages: tuple[str, ...], log: Log = print) -> str:
    """The derived image for `packages`, built now if this is the first job that needs it."""
    tag = derived_tag(base, packages)
    with _derive_lock:
        if exists(client, tag):
            return tag
        with tempfile.TemporaryDirectory(prefix="clade-derive-") as context:
            site = Path(context) / "site"
            command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
            command += ["--no-warn-script-location", "--target", str(site)]
            if sys.version_info[:2] != (3, 11):  # the image's Python is 3.11: take wheels made for it
                command += wheel_options()
            log(f"installing {', '.join(packages)} for the sandbox image")
            done = subprocess.run([*command, *packages], capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
            if done.returncode != 0:
                tail = done.stderr.strip().splitlines()[-2:]
                raise SandboxError(f"cannot install {', '.join(packages)}: {' / '.join(tail)}")
            (Path(context) / "Dockerfile").write_text(f"FROM {base}\nCOPY site {SITE}\nENV PYTHONPATH={SITE}\n")
            try:
                client.images.build(
                    path=context, tag=tag, labels={RECIPE_LABEL: recipe_hash(), DERIVED_LABEL: base}, rm=True
                )
            except Exception as exc:
                raise SandboxError(f"cannot build the derived image {tag}: {exc}") from None
    return tag


@dataclass(frozen=True)
class Pruned:
    tag: str
    kind: str
    """`derived` (a task's packages on a base image), `stale` (a base of an older recipe) or `base`."""
    size_mb: float
    removed: bool
    reason: str = ""
    """Why it stayed: a container uses it, or `--dry-run`."""


def prunable(client: Any, *, everything: bool = False) -> list[tuple[str, str, float]]:
    """(tag, kind, size in MB) of the images `clade sandbox prune` removes: every derived image and
    every base image of another recipe; the current base too with `everything`."""
    current, found = base_tag(), []
    for img in client.images.list(name=REPOSITORY):
        size = round((img.attrs.get("Size") or 0) / 1e6, 1)
        for tag in img.tags:
            if not tag.startswith(f"{REPOSITORY}:"):
                continue
            if tag.startswith(f"{REPOSITORY}:{DERIVED_PREFIX}"):
                found.append((tag, "derived", size))
            elif tag != current:
                found.append((tag, "stale", size))
            elif everything:
                found.append((tag, "base", size))
    return sorted(found, key=lambda item: ({"derived": 0, "stale": 1, "base": 2}[item[1]], item[0]))


def prune(
    client: Any, *, everything: bool = False, dry_run: bool = False, only: Callable[[str], bool] | None = None
) -> list[Pruned]:
    """Remove what `prunable` lists (those `only` accepts); an image a container still uses stays,
    and says so. Derived images come back on demand: the next job that needs one builds it."""
    import docker.errors

    done = []
    for tag, kind, size in prunable(client, everything=everything):
        if only is not None and not only(tag):
            continue
        if dry_run:
            done.append(Pruned(tag, kind, size, removed=False, reason="dry run"))
            continue
        try:
            client.images.remove(tag)
        except docker.errors.ImageNotFound:
            continue  # removed meanwhile
        except docker.errors.APIError as exc:
            reason = "a container uses it" if exc.status_code == 409 else str(exc.explanation or exc)
            done.append(Pruned(tag, kind, size, removed=False, reason=reason))
            continue
        done.append(Pruned(tag, kind, size, removed=True))
    return done
