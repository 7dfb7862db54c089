"""The modeltop terminal UI: a Textual client of the daemon's API (it never opens the store itself)."""
