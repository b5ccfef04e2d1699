"""The search agent: the evolution loop, mutation operators, LLM client, prompts, edit formats."""
