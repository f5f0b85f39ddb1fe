"""Building blocks for WHERE clauses shared by authors and books."""


def ilike_pattern(fragment: str) -> str:
    """An ILIKE pattern (escape character `\\`) matching `fragment` anywhere, literally."""
    escaped = fragment.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
