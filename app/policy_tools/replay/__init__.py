"""Replay recorded conversations through one policy (or two, to compare) without calling any LLM."""
