"""The DuckDB store: one file, opened for writing by the daemon alone (DESIGN.md §1)."""
