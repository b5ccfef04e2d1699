"""The process backend's jail: a bubblewrap (`bwrap`) sandbox built from nothing, per process.

Following bubblewrap's own design, nothing of the host is visible unless bound in: the root is
an empty tmpfs (remounted read-only once built), with read-only binds of /usr (and the /bin,
/lib, /sbin links into it), the pieces of /etc the dynamic loader and Python read, and the
interpreter's prefix; a fresh /proc mounted from inside the new PID namespace (the host's
procfs is not in the tree at all, so unmounting /proc reveals an empty directory); a minimal
/dev; a private tmpfs /tmp; the job's directory read-write at `WORKDIR`. New user (where
usable), mount, PID, network, IPC, UTS and cgroup namespaces; --die-with-parent and
--new-session (no TIOCSTI into the host's terminal).

Two ways to drop authority, chosen by `mode()`:

- `root` (the host process is root): bwrap runs privileged, builds the tree, then `setpriv`
  switches to an unprivileged host uid/gid picked per process from `UID_RANGE` (never a real
  account), clears supplementary groups, empties the capability bounding set and sets
  no_new_privs. The job holds no capability in any namespace and no uid that owns a host file
  outside its own directory, so even a kernel-level escape from the namespaces lands as
  nobody. (A user namespace is not used here: one created by root maps its users to host
  root, and its files would be root's.)
- `userns` (not root, unprivileged user namespaces allowed): bwrap creates a user namespace
  mapping one in-namespace uid to the host user, drops every capability and disables further
  user namespaces. Judge and candidate get different in-namespace uids and separate
  namespaces, so neither can see, signal or trace the other; both are the host user outside.
"""

from __future__ import annotations

import functools
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

#: Where a job finds its working directory inside the sandbox (its cwd and $HOME).
WORKDIR = "/job"

#: Host uids (and gids) handed to root-mode jobs: above systemd's container range
#: (524288-1879048191) and below 2^31, where no account or container lives.
UID_RANGE = (1_879_048_192, 2_147_483_647)

#: In-namespace uids of a userns-mode judge and candidate.
JUDGE_NS_UID, CANDIDATE_NS_UID = 1000, 1001

_ETC = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "alternatives", "nsswitch.conf")
_TOP_LINKS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
#: Device nodes CUDA opens besides each leased GPU's /dev/nvidiaN.
_NVIDIA_SHARED = ("/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia-modeset")


def find() -> str | None:
    """The bwrap executable, or None."""
    return shutil.which("bwrap")


def pick_uid() -> int:
    """A fresh unprivileged host uid for one root-mode process (its RLIMIT_NPROC is its own)."""
    return UID_RANGE[0] + secrets.randbelow(UID_RANGE[1] - UID_RANGE[0])


def interpreter_roots(python: str = sys.executable) -> list[str]:
    """The directories the interpreter needs read-only: its prefixes (a venv's and its base's)."""
    roots = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)}
    real = os.path.realpath(python)
    if not any(real.startswith(root + "/") for root in roots):
        roots.add(os.path.dirname(os.path.dirname(real)))  # another interpreter: <prefix>/bin/python
    # /usr is bound whole; a prefix inside it needs no bind of its own
    return sorted(root for root in roots if root != "/" and not (root + "/").startswith("/usr/"))


@dataclass(frozen=True)
class Spec:
    """One sandboxed process: its directory, who it runs as, what extra it sees."""

    workdir: Path
    uid: int
    """Root mode: the host uid; userns mode: the in-namespace uid."""
    passwd: Path | None = None
    """A passwd/group pair (same directory) naming `uid`, for tools that look their user up."""
    gpus: Sequence[str] = ()
    gateway_socket: str | None = None
    python_roots: Sequence[str] = field(default_factory=interpreter_roots)


def command(tool: str, mode: str, spec: Spec, argv: Sequence[str]) -> list[str]:
    """The bwrap command line that runs `argv` in `spec`'s sandbox."""
    args = [tool, "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
    args += ["--die-with-parent", "--new-session", "--hostname", "sandbox"]
    if mode == "userns":
        args += ["--unshare-user", "--disable-userns", "--uid", str(spec.uid), "--gid", str(spec.uid)]
        args += ["--cap-drop", "ALL"]
    else:  # privileged bwrap keeps only what setpriv needs to become spec.uid, then drops it
        args += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
        args += ["--cap-add", "CAP_SETPCAP", "--cap-add", "CAP_DAC_READ_SEARCH"]  # to chdir into the 0700 /job
    args += _tree(spec.python_roots, spec.passwd, spec.gpus, spec.gateway_socket)
    args += ["--bind", str(spec.workdir), WORKDIR, "--chdir", WORKDIR, "--remount-ro", "/"]
    args.append("--")
    if mode == "root":
        setpriv = ["/usr/bin/setpriv", f"--reuid={spec.uid}", f"--regid={spec.uid}", "--clear-groups"]
        args += [*setpriv, "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]
    return [*args, *argv]


def _tree(
    python_roots: Sequence[str], passwd: Path | None, gpus: Sequence[str] = (), gateway_socket: str | None = None
) -> list[str]:
    """The read-only tree every sandbox gets: /usr, the loader's /etc, the interpreter, /proc,
    /dev, a private /tmp (and the leased GPUs, the gateway's socket)."""
    args: list[str] = []
    args += ["--ro-bind", "/usr", "/usr"]
    for name in _TOP_LINKS:
        path = Path("/" + name)
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    args += ["--perms", "0755", "--dir", "/etc"]  # bwrap would make it 0700, unreadable to the job's uid
    for name in _ETC:
        args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    if passwd is not None:
        args += ["--ro-bind", str(passwd), "/etc/passwd", "--ro-bind", str(passwd.with_name("group"))]
        args += ["/etc/group"]
    made: set[str] = set()

    def parents(path: str) -> list[str]:
        # bwrap would copy a host parent's mode (/root is 0700): make the ancestors traversable
        new = [str(p) for p in reversed(Path(path).parents[:-1]) if str(p) not in made]
        made.update(new)
        return [arg for parent in new for arg in ("--perms", "0755", "--dir", parent)]

    for root in python_roots:
        args += [*parents(root), "--ro-bind", root, root]
    # tmpfs pages are charged to the job's cgroup, so its memory limit bounds them too
    args += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--tmpfs", "/dev/shm"]
    args += ["--perms", "1777", "--tmpfs", "/tmp"]
    made.add("/tmp")
    if gpus:
        for node in (*_NVIDIA_SHARED, *(f"/dev/nvidia{index}" for index in gpus)):
            args += ["--dev-bind-try", node, node]
    if gateway_socket is not None:  # the one host socket a job may get, at its host path
        args += [*parents(gateway_socket), "--bind", gateway_socket, gateway_socket]
    return args


def server_command(tool: str, python_roots: Sequence[str], passwd: Path, argv: Sequence[str]) -> list[str]:
    """The bwrap command line of a warm job server (sandboxes/bwrap_pool.py): PID 1 of its own
    namespaces, root with only the capabilities the docker backend's job server has (to start
    jobs under two unprivileged uids and clean up after them), writable tmpfs /work and
    /candidate for the jobs, the rest of the tree as every sandbox's."""
    from sandboxes.container import CAPABILITIES

    args = [tool, "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
    args += ["--as-pid-1", "--die-with-parent", "--new-session", "--hostname", "sandbox", "--cap-drop", "ALL"]
    for name in CAPABILITIES:
        args += ["--cap-add", f"CAP_{name}"]
    args += _tree(python_roots, passwd)
    args += ["--perms", "0700", "--tmpfs", "/work", "--perms", "0700", "--tmpfs", "/candidate"]
    return [*args, "--chdir", "/", "--remount-ro", "/", "--", *argv]


def passwd_lines(uid: int) -> tuple[str, str]:
    """/etc/passwd and /etc/group contents naming the job's user (and root, for tools that ask)."""
    return (
        f"root:x:0:0:root:/nonexistent:/usr/sbin/nologin\njob:x:{uid}:{uid}:job:{WORKDIR}:/bin/sh\n",
        f"root:x:0:\njob:x:{uid}:\n",
    )


@functools.lru_cache(maxsize=1)
def mode() -> tuple[str | None, str]:
    """("root" | "userns", what it enforces) where a bwrap sandbox works here, else (None, why not).

    Verified by running `true` in the same sandbox a job gets, not assumed from the kernel's
    settings (a container may forbid namespaces whatever /proc/sys says).
    """
    if not sys.platform.startswith("linux"):
        return None, "not Linux"
    tool = find()
    if tool is None:
        how = " (as root: apt-get install bubblewrap)" if os.geteuid() == 0 else ""
        return None, f"bubblewrap (bwrap) is not installed{how}"
    kind = "root" if os.geteuid() == 0 else "userns"
    if kind == "root" and not os.access("/usr/bin/setpriv", os.X_OK):
        return None, "util-linux setpriv (/usr/bin/setpriv) is missing"
    uid = pick_uid() if kind == "root" else JUDGE_NS_UID
    with tempfile.TemporaryDirectory(prefix="clade-probe-") as empty:
        probe = command(tool, kind, Spec(workdir=Path(empty), uid=uid, python_roots=()), ["/bin/true"])
        try:
            done = subprocess.run(probe, capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return None, f"bwrap does not start: {exc}"
    if done.returncode != 0:
        why = done.stderr.strip().splitlines()[-1:] or [f"exit {done.returncode}"]
        hint = "" if kind == "root" else " (unprivileged user namespaces may be disabled)"
        return None, f"bwrap cannot build a sandbox here: {why[0]}{hint}"
    if kind == "root":
        return kind, "bwrap (root): each process as its own unprivileged host uid, no capabilities"
    return kind, "bwrap (user namespace): unprivileged in-namespace uid, no capabilities"
