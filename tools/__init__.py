"""Project tooling that runs in `make check` but is not part of the service."""
