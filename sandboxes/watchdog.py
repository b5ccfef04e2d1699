"""A watchdog that ends this process's warm sandboxes when the process dies, however it dies.

A warm server gets PR_SET_PDEATHSIG (and bubblewrap's --die-with-parent), but bubblewrap drops
capabilities after it starts, which clears the parent-death signal until it sets it again: a
host SIGKILLed in that window leaves the server running. The watchdog closes the window: a small
process blocked reading a pipe whose only writer is this process; when the host dies the pipe
reaches EOF and the watchdog kills and removes every cgroup jail the host made
(`cgroup.remove_owned_by`), then exits. Started once per process, before its first warm server,
as `python -I -S`: it needs the standard library and this package only, and the site-packages'
start-up hooks would cost it a third more memory for its whole life."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

_CODE = """import sys
sys.stdin.buffer.read()
sys.path.insert(0, sys.argv[2])
from sandboxes.cgroup import remove_owned_by
remove_owned_by(int(sys.argv[1]))
"""
_lock = threading.Lock()
_running: dict[int, tuple[subprocess.Popen[bytes], int]] = {}
"""host pid -> (its watchdog, the pipe's write end): a forked child starts its own."""


def ensure() -> None:
    """Start this process's watchdog unless it runs already."""
    host = os.getpid()
    with _lock:
        if host in _running and _running[host][0].poll() is None:
            return
        read, write = os.pipe()  # not inheritable: no other child holds the write end
        try:
            proc = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _CODE, str(host), str(Path(__file__).resolve().parents[1])],
                stdin=read,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # a Ctrl-C to the host's group must not end it first
            )
        finally:
            os.close(read)
        _running[host] = (proc, write)
