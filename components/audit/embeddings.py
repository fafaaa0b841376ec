"""Every ingested image as two vectors from the trained model: its pooled features and a 3x3 grid.

Why the trained model: the pretrained backbone alone may know nothing of the domain (the shared
one was trained on six CIFAR classes; a logistic regression on its features reaches 0.72 on the
sign-language photos, too noisy to tell a wrong label from a hard image), while the fine-tuned
model's features separate the classes. Its few wrong training labels do not pull their images
far (the training accuracy stays below 0.8 under augmentation: nothing is memorised), and the
label-issue probabilities come from cross-validation over these features, never from the
model's own head. Why a grid for leakage: pooled features average the layout away, so different
photos of one hand shape look alike (cosine up to 0.985 here); the backbone's output map
area-pooled to 3x3 keeps where things are, and a re-encoded copy stays above 0.979 while the
closest distinct photo is at 0.959 (measured on the sign-language folder). A model trained from
scratch on drawn shapes has no such margin (a triangle and a checkerboard at 0.97 in the demo),
so a candidate pair is confirmed on pixels: the Pearson correlation of 16x16 grey thumbnails,
0.9996 or more for the re-encoded copies against at most 0.95 for distinct photos.
"""
import numpy as np
import tensorflow as tf

from components.common.model_runners import preprocess
from schemas.artifacts import Examples, Model

GRID = 3
THUMBNAIL = 16  # side of the grey thumbnail that confirms a near-copy pixel by pixel
_SPEC = {"image": tf.io.FixedLenFeature([], tf.string), "label": tf.io.FixedLenFeature([], tf.int64),
         "sha256": tf.io.FixedLenFeature([], tf.string), "filename": tf.io.FixedLenFeature([], tf.string)}


def embedder(train_dir: str):
    """(pixels -> (grid [n, 9 * channels], pooled [n, channels]), image size) of the trained model."""
    import keras

    from components.export.calibration import POOLED_LAYER
    from components.export.float32 import float32_rebuild, load_model

    trained = Model(train_dir)
    trained.require()
    model = float32_rebuild(load_model(trained.model_path()))
    pool = model.get_layer(POOLED_LAYER)
    both = keras.Model(model.inputs, [pool.input, pool.output])

    @tf.function(reduce_retracing=True)
    def embed(pixels):
        feature_map, pooled = both(pixels, training=False)
        grid = tf.image.resize(feature_map, (GRID, GRID), method="area")
        return tf.reshape(grid, [tf.shape(grid)[0], -1]), pooled

    return embed, tuple(int(x) for x in trained.info()["image_size"])


def embed_split(examples: Examples, split: str, embed, image_size, batch_size: int) -> dict:
    """{"grid", "pooled", "thumbnail": float32 rows, "labels", "sha256", "filename"} of one split, in shard order."""
    grids, pooled, thumbnails, labels, digests, names = [], [], [], [], [], []
    for record in tf.data.TFRecordDataset(examples.shards(split)).batch(256):
        parsed = tf.io.parse_example(record, _SPEC)
        pixels = preprocess(parsed["image"].numpy().tolist(), image_size)
        grey = tf.image.resize(tf.image.rgb_to_grayscale(pixels), (THUMBNAIL, THUMBNAIL), method="area")
        thumbnails.append(_pearson_rows(grey.numpy().reshape(len(pixels), -1)))
        for i in range(0, len(pixels), batch_size):
            grid, vector = embed(pixels[i:i + batch_size])
            grids.append(grid.numpy())
            pooled.append(vector.numpy())
        labels.extend(parsed["label"].numpy().tolist())
        digests.extend(d.decode() for d in parsed["sha256"].numpy())
        names.extend(n.decode() for n in parsed["filename"].numpy())
    return {"grid": np.concatenate(grids), "pooled": np.concatenate(pooled),
            "thumbnail": np.concatenate(thumbnails), "labels": np.asarray(labels, np.int64),
            "sha256": digests, "filename": names}


def _pearson_rows(rows: np.ndarray) -> np.ndarray:
    """Each row minus its own mean, unit length: dot products are then Pearson correlations (brightness-proof)."""
    centered = rows - rows.mean(axis=1, keepdims=True)
    return (centered / np.maximum(np.linalg.norm(centered, axis=1, keepdims=True), 1e-6)).astype(np.float32)


def centered_unit(rows: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Rows minus the dataset mean, scaled to unit length: cosine then measures what differs between images
    (ReLU features share a large positive mean that makes every raw cosine close to 1)."""
    centered = rows - mean
    return (centered / np.maximum(np.linalg.norm(centered, axis=1, keepdims=True), 1e-12)).astype(np.float32)
