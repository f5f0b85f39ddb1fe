"""Data access for the catalogue: plain async functions over an explicit session."""
