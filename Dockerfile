# The image Kubeflow Pipelines runs each step in (python -m pipeline.schedule kfp --image ...). Its
# install line is README.md's first command's (tests/test_kfp_pipeline.py keeps them the same).
# Not built by this project's CI: nothing here has a container registry to push it to.
FROM python:3.11-slim
WORKDIR /opt/transferline
COPY . .
RUN python3 -m venv .venv && .venv/bin/pip install -q -e .
ENV PATH=/opt/transferline/.venv/bin:$PATH
