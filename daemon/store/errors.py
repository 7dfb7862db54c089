"""Store errors, importable without duckdb so the CLI can catch them cheaply."""


class StoreError(Exception):
    """The store cannot be opened or migrated; the message says what to do."""
