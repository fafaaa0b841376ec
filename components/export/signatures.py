"""The exported SavedModel: three serving signatures around one Keras model.

Written with TensorFlow's own `tf.saved_model.save` of a `tf.Module` that holds the model's
weights and the signature functions, so TF Serving finds `serving_default`, and every signature
preprocesses with the trainer's `decode_and_resize`: what serving sees is exactly what
evaluation saw.

  serving_default(images: string[batch])       encoded JPEG/PNG/GIF/BMP/WebP bytes
  serve_images(images: uint8[batch, h, w, 3])   pixels of any size, resized in the graph
  serve_tf_examples(examples: string[batch])    serialized tf.Examples with an `image` feature
each returning probabilities [batch, classes], classes [batch, k] (label strings), scores [batch, k]
and label [batch]: the top class, or the unknown label where the model abstains: its top
probability is below the abstention threshold, or (with class prototypes) its pooled backbone
features are less similar to every class prototype than the fitted similarity threshold; the
latter also adds `similarity` [batch] (components/export/calibration.py). Without abstention,
label is always the top class. Probabilities are calibrated when the export folded a
temperature into the model.

The two that decode first check every image's size from its header against the pixel and frame
budget (`image_limits.check`): an image over it is refused with InvalidArgument naming it, before
anything is decoded. The budget is saved with the model (`max_image_pixels`, `max_image_frames`
variables) so that `pipeline.serve` can count decoded pixels against its memory budget.

Why not Keras's `keras.export.ExportArchive` (what `model.export()` uses): it walks every Keras
layer's trackable children and retraces the model for the save, 4.8-8.3 s for the demo's
MobileNetV2 against 2.4 s for this module, which saves the same functions and weights (3.0 MB
against 5.0 MB on disk; issue 11). The Keras model is traced once, shared by the signatures.
"""

import keras
import tensorflow as tf

from components.common import decoding_budget, image_limits
from components.common.image_ops import decode_and_resize, resize_for_model
from components.common.trained_model import HEAD_POOL
from components.export import tta
from schemas import feature_spec


def write_saved_model(
    model: keras.Model,
    labels: list,
    image_size,
    top_k: int,
    path: str,
    abstention: dict | None = None,
    prototypes=None,
    tta_mode: str = "none",
    max_image_pixels: int = decoding_budget.MAX_PIXELS,
    max_image_frames: int = decoding_budget.MAX_FRAMES,
) -> None:
    """Write `model` with the three signatures to `path` (a new directory).

    abstention: model_info.json's entry (threshold, unknown_label, far_from_training) or None;
    prototypes: [classes, features] unit class prototypes for the far-from-training check, or None.
    tta_mode: "flip" averages the probabilities over each image and its mirror (components/export/tta.py).
    max_image_pixels, max_image_frames: the decoding budget of the signatures that take encoded images.
    """
    height, width = image_size
    label_table = tf.constant(labels)
    abstention = abstention or {"threshold": 0.0, "unknown_label": "unknown"}
    unknown = tf.constant(abstention["unknown_label"])
    k = min(top_k, len(labels))
    spec = [tf.TensorSpec([None, height, width, 3], tf.float32)]
    if prototypes is None:
        infer = tf.function(lambda pixels: (tta.averaged(model, tta_mode)(pixels), None), input_signature=spec)
    else:  # one pass gives the image's probabilities and its features (the check reads the image's, not its mirror's)
        with_features = keras.Model(model.inputs, [model.output, model.get_layer(HEAD_POOL).output])

        def probabilities_and_features(pixels):
            probabilities, pooled = with_features(pixels, training=False)
            return tta.with_mirror(model, pixels, probabilities, tta_mode), pooled

        infer = tf.function(probabilities_and_features, input_signature=spec)
        class_prototypes = tf.constant(prototypes, tf.float32)
        similarity_threshold = abstention["far_from_training"]["similarity_threshold"]

    def outputs(pixels):
        probabilities, pooled = infer(pixels)
        scores, indices = tf.math.top_k(probabilities, k=k)
        classes = tf.gather(label_table, indices)
        accept = scores[:, 0] >= abstention["threshold"]
        found = {"probabilities": probabilities, "classes": classes, "scores": scores}
        if pooled is not None:
            similarity = tf.reduce_max(
                tf.linalg.matmul(tf.math.l2_normalize(pooled, axis=1), class_prototypes, transpose_b=True), axis=1
            )
            accept = tf.logical_and(accept, similarity >= similarity_threshold)
            found["similarity"] = similarity
        return {**found, "label": tf.where(accept, classes[:, 0], unknown)}

    max_pixels = tf.Variable(max_image_pixels, dtype=tf.int64, trainable=False, name="max_image_pixels")
    max_frames = tf.Variable(max_image_frames, dtype=tf.int64, trainable=False, name="max_image_frames")

    def decode_checked(item):
        encoded, index = item
        with tf.control_dependencies([image_limits.check(encoded, index, max_pixels, max_frames)]):
            return decode_and_resize(encoded, (height, width))

    def decode_batch(encoded):
        return tf.map_fn(
            decode_checked,
            (encoded, tf.range(tf.size(encoded, out_type=tf.int64))),
            fn_output_signature=tf.TensorSpec([height, width, 3], tf.float32),
        )

    def signature(fn, spec):
        return tf.function(fn, input_signature=[spec], autograph=False).get_concrete_function()

    module = tf.Module()
    module.weights = [w.value for w in model.weights]  # the tf.Variables the traced model reads
    module.infer = infer
    module.max_image_pixels, module.max_image_frames = max_pixels, max_frames
    signatures = {
        "serving_default": signature(
            lambda images: outputs(decode_batch(images)), tf.TensorSpec([None], tf.string, name="images")
        ),
        "serve_images": signature(
            lambda images: outputs(resize_for_model(images, (height, width))),
            tf.TensorSpec([None, None, None, 3], tf.uint8, name="images"),
        ),
        "serve_tf_examples": signature(
            lambda examples: outputs(decode_batch(tf.io.parse_example(examples, feature_spec("image"))["image"])),
            tf.TensorSpec([None], tf.string, name="examples"),
        ),
    }
    tf.saved_model.save(module, path, signatures=signatures)
