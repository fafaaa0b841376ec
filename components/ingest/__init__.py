"""The ingest component: a folder of class sub-folders (or a TFDS dataset) -> validated, split TFRecords.

    from components.ingest import IngestConfig, run
    result = run(IngestConfig(data_dir="photos"), "root/ingest/run1", previous_dir=None)
    print(result.summary())
"""
from components.ingest.config import IngestConfig
from components.ingest.ingest import run
from components.ingest.result import IngestResult

__all__ = ["IngestConfig", "IngestResult", "run"]
