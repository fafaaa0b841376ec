"""Serving pushed models over HTTP with TF Serving's REST API (`python -m pipeline.serve`)."""
