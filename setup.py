"""transferline: a folder of labelled images in, a validated and pushed image classifier out."""

import setuptools

setuptools.setup(
    name="transferline",
    version="0.1.0",
    description=(
        "Transfer-learning pipeline for image classifiers: Beam ingest, staged Keras "
        "fine-tuning, a TFMA gate and an atomic TF-Serving push."
    ),
    python_requires=">=3.11,<3.14",  # TF 2.21, Beam 2.77 and tfx-bsl 1.21 publish wheels for 3.11-3.13
    packages=setuptools.find_packages(include=["pipeline*", "components*", "schemas*", "server*"]),
    package_data={"schemas": ["*.pbtxt", "*.md"]},
    install_requires=[
        "tensorflow>=2.21,<2.22",
        "keras>=3.15,<3.16",
        "apache-beam>=2.77,<2.78",
        "tensorflow-model-analysis>=0.52,<0.53",
        "tfx-bsl>=1.21,<1.22",
        "tensorflow-datasets==4.9.10",
        "tensorboard>=2.21,<2.22",  # the Keras TensorBoard callback needs it; TF 2.21 no longer pulls it in
        "importlib_resources>=6",  # tensorflow-datasets 4.9.10 imports it when it downloads (--tfds-name)
        "pillow>=10",
        "pyyaml>=6",
        "matplotlib>=3.8",
        "scipy>=1.11",  # calibration (temperature search), the gate's intervals and exact tests
        "cleanlab>=2.9,<3",  # the audit's confident learning (pulls scikit-learn)
        "faiss-cpu>=1.15,<2",  # the audit's approximate nearest-neighbour index above ~50,000 images
        # the warm-up requests' PredictionLog protos and pipeline.serve's gRPC stubs; its version is tfx-bsl's (1.21: 2.19)
        "tensorflow-serving-api",
        "starlette>=1.10,<2",  # python -m pipeline.serve: TF Serving's REST API (server/)
        "uvicorn>=0.54,<1",
        "prometheus-client>=0.26,<1",  # pipeline.serve's /monitoring/prometheus/metrics (server/metrics.py)
        # the ONNX export format (components/common/formats/onnx.py): tf2onnx converts, ONNX Runtime scores it
        "tf2onnx>=1.17,<1.18",
        "onnxruntime>=1.32,<2",
        # the recipe search (components/train/tune.py): a wall-clock budget, median pruning, a resumable journal
        "optuna>=5.0,<6",
        # uvicorn's C HTTP parser and event loop, used when installed: 1.6x the requests/s of its pure-Python
        # h11 + asyncio on the load benchmark (benchmarks/serve_load.py, docs/benchmarks.md, "Serving").
        "httptools>=0.6",
        "uvloop>=0.19; sys_platform != 'win32'",
    ],
    extras_require={
        # Beam's DaskRunner (--runner=DaskRunner --dask_client_address=...): docs/scale.md.
        "dask": ["dask[distributed]>=2026.8,<2027"],
        # The tests start a dask.distributed cluster (tests/test_distributed_runners.py).
        "test": [
            "pytest>=8",
            "pytest-xdist>=3.6",  # the suite runs on every core (README's test command: -n auto)
            "dask[distributed]>=2026.8,<2027",
            "requests>=2.31",  # the HTTP client of tests/test_serve.py and benchmarks/serve_load.py
            "psutil>=5.9",  # benchmarks/scale.py samples each run's process-tree memory
            "ruff>=0.17,<0.18",  # lint and format (ruff.toml), run by .ci/run
        ],
    },
)
