"""Running untrusted code: one contract (`Sandbox.run(job) -> Outcome`), several backends."""

from sandboxes.base import PYTHON, RESULT_FILE, Job, Limits, Outcome, Sandbox, SandboxError
from sandboxes.select import SANDBOX_CHOICES, open_sandbox

__all__ = [
    "PYTHON",
    "RESULT_FILE",
    "SANDBOX_CHOICES",
    "Job",
    "Limits",
    "Outcome",
    "Sandbox",
    "SandboxError",
    "open_sandbox",
]
