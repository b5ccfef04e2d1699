"""Scores `value()`: 0 at exactly 10, lower the further away."""

import importlib.util


def evaluate(program_path):
    spec = importlib.util.spec_from_file_location("candidate", program_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    value = float(module.value())
    return {"combined_score": -abs(value - 10.0), "value": value}
