"""A tiny task for the LLM tests: make `value()` return a number as close to 10 as possible."""


def value() -> float:
    # EVOLVE-BLOCK-START
    base = 2.0
    return base * 1.5
    # EVOLVE-BLOCK-END
