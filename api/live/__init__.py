"""Live updates: change subscriptions fed by a change log written with each write."""
