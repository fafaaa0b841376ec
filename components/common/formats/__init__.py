"""The export formats, registered in one place.

Each format is one module (components/common/formats/<name>.py) declaring a `Format`: where its
file lives, how it is written and how it is run (base.py). The export writes the ones
`export.formats` names; evaluation, the gate, the push, the report, the model card,
`pipeline.predict --model-format` and schemas/ARTIFACTS.md iterate this registry. Adding a format
is its module plus one entry in `FORMATS` below.

Here, not in components/export, because five consumers in three components and the CLIs read it,
and components never import each other.
"""

from components.common.errors import UsageError
from components.common.formats import onnx, saved_model, tflite
from components.common.formats.base import Format, Source, size_of

FORMATS = {f.name: f for f in (saved_model.FORMAT, *tflite.FORMATS, onnx.FORMAT)}

__all__ = ["FORMATS", "Format", "Source", "get", "register", "size_of"]


def register(fmt: Format) -> Format:
    """Add `fmt` to the registry (a plugin's or a test's format); its name must be new."""
    if fmt.name in FORMATS:
        raise ValueError(f"an export format named {fmt.name!r} is already registered")
    FORMATS[fmt.name] = fmt
    return fmt


def get(name: str) -> Format:
    """The registered format `name`; a UsageError listing the known ones otherwise."""
    if name not in FORMATS:
        raise UsageError(f"unknown export format {name!r}; known: {', '.join(FORMATS)}")
    return FORMATS[name]


def for_file(path: str) -> Format | None:
    """The format of a model file: by its name (`model_int8.tflite` -> tflite_int8), else by its
    extension (any `.tflite` opens as TFLite); None for a directory's or an unknown name."""
    base = path.rstrip("/").replace("\\", "/").split("/")[-1]
    files = [f for f in FORMATS.values() if not f.reference]
    for fmt in files:
        if base == fmt.path.split("/")[-1]:
            return fmt
    extension = base.rpartition(".")[2]
    return next((f for f in files if "." in base and f.path.rpartition(".")[2] == extension), None)
