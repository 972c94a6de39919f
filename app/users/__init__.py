"""Character knowledge: per-user memory of stated preferences and distress (docs/user-memory.md)."""
