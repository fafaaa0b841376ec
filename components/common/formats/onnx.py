"""ONNX (`model.onnx`): float32 pixels at the model's size in, probabilities out, for ONNX Runtime
on servers and in C#, Java or JavaScript, and as the way into TensorRT and OpenVINO.

Converted by tf2onnx from `Source.pixels_function` (the function the TFLite files are made from,
test-time augmentation included): the SavedModel's signatures decode and resize with an
antialiased resize (`ScaleAndTranslate`) that has no ONNX operator, so, as with TFLite, decoding
and resizing are the client's (bilinear with antialiasing to the model's size, RGB 0-255;
docs/export.md, "ONNX"). Opset 17: the newest that ONNX Runtime >= 1.13, TensorRT 8.6 and OpenVINO
2022.3 all run, and enough for every operator a keras.applications backbone uses. The labels,
input size, calibration and abstention threshold travel in the model's `metadata_props`, so a
client needs no sidecar.
"""

import json
import logging
import os

import numpy as np

from components.common.formats.base import Format, model_bytes

OPSET = 17


def write(source, path: str) -> None:
    import tensorflow as tf
    import tf2onnx

    logging.getLogger("tf2onnx").setLevel(logging.WARNING)  # one INFO line per rewriter pass otherwise
    fn = tf.function(
        lambda pixels: {"probabilities": source.pixels_function(pixels)}, input_signature=source.pixels_spec()
    )
    model, _ = tf2onnx.convert.from_function(fn, input_signature=source.pixels_spec(), opset=OPSET)
    model.doc_string = source.description
    for key, value in {"name": source.name, "version": source.version, **source.properties}.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value if isinstance(value, str) else json.dumps(value)
    tf.io.gfile.makedirs(os.path.dirname(path) or ".")
    with tf.io.gfile.GFile(path, "wb") as f:
        f.write(model.SerializeToString())


class OnnxRunner:
    """Scores preprocessed images with ONNX Runtime on the CPU."""

    def __init__(self, path: str, num_threads: int | None = None):
        import onnxruntime

        content = model_bytes(path, "ONNX")
        options = onnxruntime.SessionOptions()
        if num_threads:
            options.intra_op_num_threads = num_threads
        options.log_severity_level = 3  # errors only
        self.session = onnxruntime.InferenceSession(content, options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0]
        self.image_size = tuple(int(d) for d in self.input.shape[1:3])
        self.io = {"input": "float32", "output": "float32"}
        self.metadata = self.session.get_modelmeta().custom_metadata_map

    def predict_pixels(self, pixels: np.ndarray, batch_size: int = 32) -> np.ndarray:
        """float32 0-255 [n, h, w, 3] -> float32 probabilities [n, classes]."""
        return np.concatenate(
            [
                self.session.run(["probabilities"], {self.input.name: pixels[i : i + batch_size].astype(np.float32)})[0]
                for i in range(0, len(pixels), batch_size)
            ],
            axis=0,
        )

    def predict_encoded(self, images: list, batch_size: int = 32) -> np.ndarray:
        from components.common.image_ops import preprocess

        return self.predict_pixels(preprocess(images, self.image_size), batch_size)


FORMAT = Format("onnx", "ONNX (float32, opset 17)", "model.onnx", write, OnnxRunner, parity=True)
