"""Orchestration and command-line entry points; no image, model or metric logic lives here."""
