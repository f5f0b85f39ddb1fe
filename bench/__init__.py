"""The benchmark: the API against a hand-written reference server, under wrk (python -m bench)."""
