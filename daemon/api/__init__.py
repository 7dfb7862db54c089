"""The local HTTP API over a Unix socket."""
