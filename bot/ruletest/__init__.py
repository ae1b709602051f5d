"""Rule unit tests: `python -m bot test-rules` (schema, loading, running, reporting)."""
