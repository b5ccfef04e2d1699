"""Runs inside the sandbox (untrusted): imports the task's OpenEvolve `evaluator.py` unchanged,
calls `evaluate(program_path)` (or `evaluate_stageN`) and writes the returned metrics as raw
JSON. Values are written as they came; non-finite floats become strings ("nan", "inf") and
other objects their repr, so the host check can say what was wrong with them."""

import importlib.util
import json
import math
import os
import sys
import types


class EvaluationResult:
    """Stand-in for openevolve.evaluation_result.EvaluationResult when OpenEvolve is absent (a
    plain class: a dataclass is made by exec'ing generated code, a millisecond in every job)."""

    def __init__(self, metrics, artifacts=None):
        self.metrics = metrics
        self.artifacts = {} if artifacts is None else artifacts

    def __repr__(self):
        return f"EvaluationResult(metrics={self.metrics!r}, artifacts={self.artifacts!r})"

    def to_dict(self):
        return self.metrics


def provide_openevolve_types():
    try:
        import openevolve.evaluation_result  # noqa: F401
    except ImportError:
        package = types.ModuleType("openevolve")
        package.__path__ = []
        module = types.ModuleType("openevolve.evaluation_result")
        module.EvaluationResult = EvaluationResult
        package.evaluation_result = module
        sys.modules["openevolve"] = package
        sys.modules["openevolve.evaluation_result"] = module


def encode(value):
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value
    try:
        number = float(value)  # numpy scalars, Decimal, ...
    except (TypeError, ValueError):
        return repr(value)[:200]
    if type(value).__name__.startswith("bool"):
        return bool(value)
    return number if math.isfinite(number) else repr(number)


def main():
    function, program = sys.argv[1], os.path.abspath(sys.argv[2])
    provide_openevolve_types()
    sys.path.insert(0, os.getcwd())
    spec = importlib.util.spec_from_file_location("evaluator", "evaluator.py")
    evaluator = importlib.util.module_from_spec(spec)
    sys.modules["evaluator"] = evaluator
    spec.loader.exec_module(evaluator)
    try:
        returned = getattr(evaluator, function)(program)
    except Exception as exc:  # in isolated mode, the candidate's process failed a call
        if type(exc).__name__ != "CandidateFault":
            raise
        with open("result.json", "w") as handle:
            json.dump({"function": function, "fault": str(exc)[:400]}, handle)
        return
    artifacts = getattr(returned, "artifacts", None)
    metrics = getattr(returned, "metrics", returned)
    if artifacts:
        print(json.dumps({"artifacts": {str(k): str(v)[:2000] for k, v in artifacts.items()}}))
    if isinstance(metrics, dict):
        raw = {str(key): encode(value) for key, value in metrics.items()}
    else:
        raw = repr(metrics)[:200]
    with open("result.json", "w") as handle:
        json.dump({"function": function, "metrics": raw}, handle, allow_nan=False)


if __name__ == "__main__":
    main()
