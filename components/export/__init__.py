"""Export: SavedModel signatures, TFLite variants and the parity check (`run` is the entry)."""

from components.common.lazy import lazy_attributes
from components.export.config import ExportConfig

__all__ = ["ExportConfig", "ExportResult", "run"]
__getattr__ = lazy_attributes(__name__, {"ExportResult": "exporter", "run": "exporter"})
