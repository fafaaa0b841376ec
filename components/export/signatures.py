"""The exported SavedModel: three serving signatures around one Keras model.

Written with Keras's own `keras.export.ExportArchive` (what `model.export()` uses), so TF
Serving finds `serving_default`, and every signature preprocesses with the trainer's
`decode_and_resize`: what serving sees is exactly what evaluation saw.

  serving_default(images: string[batch])       encoded JPEG/PNG/GIF/BMP bytes
  serve_images(images: uint8[batch, h, w, 3])   pixels of any size, resized in the graph
  serve_tf_examples(examples: string[batch])    serialized tf.Examples with an `image` feature
each returning probabilities [batch, classes], classes [batch, k] (label strings) and scores [batch, k].
"""
import keras
import tensorflow as tf

from components.common.image_ops import decode_and_resize, resize_for_model

_EXAMPLE_SPEC = {"image": tf.io.FixedLenFeature([], tf.string)}


def write_saved_model(model: keras.Model, labels: list, image_size, top_k: int, path: str) -> None:
    """Write `model` with the three signatures to `path` (a new directory)."""
    height, width = image_size
    label_table = tf.constant(labels)
    k = min(top_k, len(labels))

    # One traced inference function shared by the signatures: MobileNetV2 is traced once, not three times.
    infer = tf.function(lambda pixels: model(pixels, training=False),
                        input_signature=[tf.TensorSpec([None, height, width, 3], tf.float32)])

    def outputs(pixels):
        probabilities = infer(pixels)
        scores, indices = tf.math.top_k(probabilities, k=k)
        return {"probabilities": probabilities, "classes": tf.gather(label_table, indices), "scores": scores}

    def decode_batch(encoded):
        return tf.map_fn(lambda b: decode_and_resize(b, (height, width)), encoded,
                         fn_output_signature=tf.TensorSpec([height, width, 3], tf.float32))

    def serving_default(images):
        return outputs(decode_batch(images))

    def serve_images(images):
        return outputs(resize_for_model(images, (height, width)))

    def serve_tf_examples(examples):
        return outputs(decode_batch(tf.io.parse_example(examples, _EXAMPLE_SPEC)["image"]))

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", serving_default,
                         input_signature=[tf.TensorSpec([None], tf.string, name="images")])
    archive.add_endpoint("serve_images", serve_images,
                         input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name="images")])
    archive.add_endpoint("serve_tf_examples", serve_tf_examples,
                         input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    archive.write_out(path, verbose=False)
