"""The ingest component: a folder of class sub-folders (or a TFDS dataset) -> validated, split TFRecords.

    from components.ingest import IngestConfig, run
    result = run(IngestConfig(data_dir="photos"), "root/ingest/run1", previous_dir=None)
    print(result.summary())

`run` is imported on first use (PEP 562): Beam workers import this package to reach the DoFns
in `transforms`, and must not pay for TensorFlow, which only the driver needs.
"""
from components.ingest.config import IngestConfig
from components.ingest.result import IngestResult

__all__ = ["IngestConfig", "IngestResult", "run"]


def __getattr__(name):
    if name == "run":
        from components.ingest.ingest import run

        return run
    raise AttributeError(f"module 'components.ingest' has no attribute {name!r}")
