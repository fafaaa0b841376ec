"""Helpers that more than one component needs (errors with exit codes, atomic publishing)."""
