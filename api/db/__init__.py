"""Database layer: URLs, engine, models, migrations and the embedded server."""
