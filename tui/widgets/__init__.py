"""Small widgets and renderers, one per file."""
