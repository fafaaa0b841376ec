"""Export: SavedModel signatures, TFLite variants and the parity check (`run` is the entry)."""
from components.export.config import ExportConfig
from components.export.exporter import ExportResult, run

__all__ = ["ExportConfig", "ExportResult", "run"]
