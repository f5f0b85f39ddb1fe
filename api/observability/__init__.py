"""Logs, metrics and request ids: what operators see of each request."""
