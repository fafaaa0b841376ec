"""TFLite model metadata, so MediaPipe Tasks (and any LiteRT metadata reader) can load the files.

MediaPipe Tasks' `ImageClassifier` refuses a float model without normalisation metadata and
returns nameless categories without a label file. This writes the standard metadata that
MediaPipe Model Maker and TFLite Model Maker write: the image input (RGB, the normalisation that
maps 0-255 pixels to what the model takes: mean 0, std 1 here, since our models take raw pixels
and preprocess inside), the probability output with its label names as an associated
`labels.txt` (TENSOR_AXIS_LABELS), a description, the author and a version. The flatbuffer is
built with the metadata schema's Python module (metadata_schema_generated.py, compiled by flatc
from the published metadata_schema.fbs and kept here with the script that regenerates it, since
neither mediapipe, whose absl-py pin conflicts with TFMA's, nor tflite-support installs beside
TensorFlow 2.21) and inserted into the model with TensorFlow's own TFLite schema, the one its
converter writes; the label file is appended as a zip archive, as the reference populator
(tflite_support's MetadataPopulator) does. The interpreter ignores both, so LiteRT runs the file
exactly as before.
"""

import io
import zipfile

import flatbuffers
import numpy as np

from components.common.formats import metadata_schema_generated as fb

METADATA_NAME = b"TFLITE_METADATA"  # the key readers look the metadata buffer up by
LABEL_FILE = "labels.txt"
IDENTIFIER = b"M001"  # metadata_schema.fbs: file_identifier
MIN_PARSER_VERSION = "1.0.0"  # NormalizationOptions and TENSOR_AXIS_LABELS files are in 1.0.0


def _metadata(labels: list, name: str, description: str, version: str, author: str) -> bytes:
    image = fb.TensorMetadataT()
    image.name = "image"
    image.description = "RGB image, pixel values 0-255 (resized to the model's input size by the caller)"
    image.content = fb.ContentT()
    image.content.contentProperties = fb.ImagePropertiesT()
    image.content.contentProperties.colorSpace = fb.ColorSpaceType.RGB
    image.content.contentPropertiesType = fb.ContentProperties.ImageProperties
    normalization = fb.ProcessUnitT()
    normalization.optionsType = fb.ProcessUnitOptions.NormalizationOptions
    normalization.options = fb.NormalizationOptionsT()
    normalization.options.mean, normalization.options.std = [0.0], [1.0]  # the model preprocesses inside
    image.processUnits = [normalization]
    image.stats = fb.StatsT()
    image.stats.max, image.stats.min = [255.0], [0.0]

    probabilities = fb.TensorMetadataT()
    probabilities.name = "probability"
    probabilities.description = f"Probabilities of the {len(labels)} labels, in the order of {LABEL_FILE}"
    probabilities.content = fb.ContentT()
    probabilities.content.contentProperties = fb.FeaturePropertiesT()
    probabilities.content.contentPropertiesType = fb.ContentProperties.FeatureProperties
    probabilities.stats = fb.StatsT()
    probabilities.stats.max, probabilities.stats.min = [1.0], [0.0]
    label_file = fb.AssociatedFileT()
    label_file.name = LABEL_FILE
    label_file.description = "Labels for categories that the model can recognize."
    label_file.type = fb.AssociatedFileType.TENSOR_AXIS_LABELS
    probabilities.associatedFiles = [label_file]

    subgraph = fb.SubGraphMetadataT()
    subgraph.inputTensorMetadata, subgraph.outputTensorMetadata = [image], [probabilities]
    model = fb.ModelMetadataT()
    model.name, model.description, model.version, model.author = name, description, version, author
    model.subgraphMetadata = [subgraph]
    model.minParserVersion = MIN_PARSER_VERSION
    builder = flatbuffers.Builder(0)
    builder.Finish(model.Pack(builder), IDENTIFIER)
    return bytes(builder.Output())


def populate(
    flatbuffer: bytes, labels: list, name: str, description: str, version: str, author: str = "transferline"
) -> bytes:
    """`flatbuffer` (a TFLite model from the converter) with the metadata and labels.txt added."""
    # TensorFlow's TFLite schema, the one its converter writes: the object API round trip keeps
    # every field (an older schema would drop fields it does not know).
    from tensorflow.lite.python import schema_py_generated as tfl

    model = tfl.ModelT.InitFromObj(tfl.Model.GetRootAsModel(flatbuffer, 0))
    buffer = tfl.BufferT()
    buffer.data = np.frombuffer(_metadata(labels, name, description, version, author), np.uint8)
    model.buffers.append(buffer)
    entry = tfl.MetadataT()
    entry.name, entry.buffer = METADATA_NAME, len(model.buffers) - 1
    model.metadata = [m for m in (model.metadata or []) if m.name != METADATA_NAME] + [entry]
    builder = flatbuffers.Builder(len(flatbuffer) + 4096)
    builder.Finish(model.Pack(builder), b"TFL3")
    packed = io.BytesIO(bytes(builder.Output()))
    with zipfile.ZipFile(packed, "a") as archive:  # appended after the flatbuffer; readers find it from the end
        archive.writestr(LABEL_FILE, "".join(f"{label}\n" for label in labels))
    return packed.getvalue()
