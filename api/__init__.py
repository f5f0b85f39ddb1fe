"""Async GraphQL API for a catalogue of authors and their books."""
