"""`python -m pipeline.serve`: TF Serving's REST and gRPC APIs over a folder of pushed versions.

Not a pipeline component (no config, no `run`, no artifact out): an application over what the
push step writes (schemas/artifacts.py, `ServingModel`), so it lives beside `components/`.
"""
