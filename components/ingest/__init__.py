"""The ingest component: a folder of class sub-folders (or a TFDS dataset) -> validated, split TFRecords.

    from components.ingest import IngestConfig, run
    result = run(IngestConfig(data_dir="photos"), "root/ingest/run1", previous_dir=None)
    print(result.summary())

`run` is imported on first use (components/common/lazy.py): Beam workers import this package to
reach the DoFns in `transforms`, and must not pay for TensorFlow, which only the driver needs.
"""

from components.common.lazy import lazy_attributes
from components.ingest.config import IngestConfig
from components.ingest.result import IngestResult

__all__ = ["IngestConfig", "IngestResult", "run"]
__getattr__ = lazy_attributes(__name__, {"run": "ingest"})
