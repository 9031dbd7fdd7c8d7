"""The statistical engine: pure functions over arrays (no I/O)."""
