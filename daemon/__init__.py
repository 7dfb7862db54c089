"""The modeltop daemon: ingest, scheduled checks, the DuckDB store and the local API (kept import-light)."""
