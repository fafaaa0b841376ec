"""TFLite metadata: MediaPipe Tasks' ImageClassifier (the real on-device client) loads every exported
variant and names the classes; LiteRT's interpreter runs the files exactly as without metadata; the
metadata reads back with the schema it was written with, which a plain install has (mediapipe is
not installed with the project: .ci/run adds it for the MediaPipe test alone)."""

import importlib.util
import io
import zipfile

import numpy as np
import pytest
import tensorflow as tf

from components.common.formats import tflite, tflite_metadata
from components.common.formats.tflite import TFLiteRunner
from components.common.image_ops import preprocess
from schemas.artifacts import Examples, ExportedModel
from schemas.split_reader import read_split
from tests import export_models


def _mediapipe_tasks() -> bool:
    """Whether MediaPipe Tasks imports (mediapipe's package imports OpenCV as well)."""
    if importlib.util.find_spec("mediapipe") is None:
        return False
    try:
        import mediapipe.tasks.python.vision  # noqa: F401
    except ImportError:
        return False
    return True


needs_mediapipe = pytest.mark.skipif(
    not _mediapipe_tasks(),
    reason="mediapipe (with OpenCV) is not installed: it pins absl-py 2.x against TFMA's <2, so .ci/run installs it for this "
    "test alone (pip install --no-deps mediapipe==1.2.2 opencv-contrib-python)",
)


def _test_pixels(tmp_path_factory, image_size):
    """The test split resized by the serving preprocessing, as uint8 (what both runtimes are fed)."""
    _, images, labels = read_split(Examples(export_models.tiny_ingest(tmp_path_factory)), "test")
    return np.round(preprocess(images, image_size)).astype(np.uint8), np.asarray(labels)


@needs_mediapipe
def test_mediapipe_image_classifier_names_the_classes_for_every_variant(tmp_path_factory):
    import mediapipe as mp
    from mediapipe.tasks import python as mp_tasks
    from mediapipe.tasks.python import vision

    export = ExportedModel(export_models.tiny_export(tmp_path_factory))
    info = export.info()
    labels = info["labels"]
    pixels, truth = _test_pixels(tmp_path_factory, tuple(info["image_size"]))
    files = {name: path for name, path in export.formats().items() if name.startswith("tflite_")}
    assert set(files) == {"tflite_float32", "tflite_float16", "tflite_dynamic_range", "tflite_int8"}
    for variant, path in files.items():
        litert = TFLiteRunner(path).predict_pixels(pixels.astype(np.float32))
        options = vision.ImageClassifierOptions(
            base_options=mp_tasks.BaseOptions(model_asset_path=path), max_results=len(labels)
        )
        with vision.ImageClassifier.create_from_options(options) as classifier:
            named = []
            for image, probabilities in zip(pixels, litert):
                result = classifier.classify(mp.Image(image_format=mp.ImageFormat.SRGB, data=image))
                categories = result.classifications[0].categories
                assert sorted(c.category_name for c in categories) == sorted(labels), variant
                assert all(c.category_name == labels[c.index] for c in categories), variant
                scores = {c.index: c.score for c in categories}
                np.testing.assert_allclose(
                    [scores[i] for i in range(len(labels))],
                    probabilities,
                    atol=0.02,
                    err_msg=f"{variant}: MediaPipe's scores are not LiteRT's",
                )
                named.append(categories[0].category_name)
        accuracy = np.mean(np.array(named) == np.array(labels)[truth])
        assert accuracy >= 0.9, f"{variant}: MediaPipe's top names match the test labels for {accuracy:.0%}"


def test_metadata_reads_back_and_litert_results_are_unchanged():
    from tensorflow.lite.python import schema_py_generated as tfl

    from components.common.formats import metadata_schema_generated as fb

    labels = ["cat", "dog", "fish"]
    model = export_models.tiny_cnn(3, (16, 16))
    pixels = np.random.default_rng(0).uniform(0, 255, (4, 16, 16, 3)).astype(np.float32)
    frozen = tflite.frozen_function(model, (16, 16))
    for variant in ("float32", "int8"):
        plain = tflite.convert(frozen, variant, pixels)
        written = tflite_metadata.populate(plain, labels, "name", "description", "v7")
        outputs = []
        for flatbuffer in (plain, written):
            interpreter = tf.lite.Interpreter(model_content=flatbuffer)
            interpreter.allocate_tensors()
            given, taken = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
            interpreter.set_tensor(given["index"], pixels[:1].astype(given["dtype"]))
            interpreter.invoke()
            outputs.append(interpreter.get_tensor(taken["index"]))
        np.testing.assert_array_equal(outputs[0], outputs[1])

        tflite_model = tfl.Model.GetRootAsModel(written, 0)
        entries = {
            tflite_model.Metadata(i).Name(): tflite_model.Metadata(i).Buffer()
            for i in range(tflite_model.MetadataLength())
        }
        buffer = tflite_model.Buffers(entries[b"TFLITE_METADATA"]).DataAsNumpy().tobytes()
        assert fb.ModelMetadata.ModelMetadataBufferHasIdentifier(buffer, 0)
        meta = fb.ModelMetadataT.InitFromObj(fb.ModelMetadata.GetRootAsModelMetadata(buffer, 0))
        assert (meta.name, meta.version, meta.minParserVersion) == (b"name", b"v7", b"1.0.0")
        image = meta.subgraphMetadata[0].inputTensorMetadata[0]
        assert image.content.contentProperties.colorSpace == fb.ColorSpaceType.RGB
        norm = image.processUnits[0].options
        assert (list(norm.mean), list(norm.std)) == ([0.0], [1.0])
        label_file = meta.subgraphMetadata[0].outputTensorMetadata[0].associatedFiles[0]
        assert (label_file.name, label_file.type) == (b"labels.txt", fb.AssociatedFileType.TENSOR_AXIS_LABELS)
        with zipfile.ZipFile(io.BytesIO(written)) as archive:
            assert archive.read("labels.txt").decode().split() == labels
