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

Cost: one pass over every image (a tf.data pipeline: parallel decode, batches of 256, the
trained model in inference mode), linear in the number of images. What is kept per image is
bounded whatever the backbone: the pooled vector, a 3x3 grid whose channels are sketched down to
`GRID_CHANNELS` by a fixed Gaussian random projection (Johnson-Lindenstrauss: cosines move by
about (1 - cos^2) / sqrt(9 * GRID_CHANNELS), under 0.002 near the 0.97 threshold, while a full
MobileNetV2 grid would be 9 x 1280 floats, 2.3 GB at 50,000 images), and a 16x16 thumbnail.
"""

import numpy as np
import tensorflow as tf

from components.common.image_ops import decode_and_resize
from schemas import feature_spec
from schemas.artifacts import Examples, Model

GRID = 3
GRID_CHANNELS = 128  # channels per grid cell after the random projection (when the backbone has more)
THUMBNAIL = 16  # side of the grey thumbnail that confirms a near-copy pixel by pixel


def embedder(train_dir: str):
    """(pixels -> (grid [n, 9 * min(channels, GRID_CHANNELS)], pooled [n, channels]), image size) of the trained model."""
    import keras

    from components.common.trained_model import HEAD_POOL, float32_rebuild, load_model

    trained = Model(train_dir)
    trained.require()
    model = float32_rebuild(load_model(trained.model_path()))
    pool = model.get_layer(HEAD_POOL)
    both = keras.Model(model.inputs, [pool.input, pool.output])
    channels = int(pool.input.shape[-1])
    projection = None
    if channels > GRID_CHANNELS:  # fixed seed: the same sketch for every split and every run
        projection = tf.constant(
            np.random.default_rng(0).normal(0, 1 / np.sqrt(GRID_CHANNELS), (channels, GRID_CHANNELS)), tf.float32
        )

    @tf.function(reduce_retracing=True)
    def embed(pixels):
        feature_map, pooled = both(pixels, training=False)
        grid = tf.image.resize(feature_map, (GRID, GRID), method="area")
        if projection is not None:
            grid = tf.einsum("nhwc,cd->nhwd", grid, projection)
        return tf.reshape(grid, [tf.shape(grid)[0], -1]), pooled

    return embed, tuple(int(x) for x in trained.info()["image_size"])


def embed_split(examples: Examples, split: str, embed, image_size, batch_size: int) -> dict:
    """{"grid", "pooled", "thumbnail": float32 rows, "labels", "sha256", "filename"} of one split, in shard order.

    The records are parsed and decoded in parallel by tf.data while the model runs on the previous batch.
    """

    def parse(records):
        parsed = tf.io.parse_example(records, feature_spec("image", "label", "sha256", "filename"))
        pixels = tf.map_fn(
            lambda b: decode_and_resize(b, image_size),
            parsed["image"],
            fn_output_signature=tf.TensorSpec([*image_size, 3], tf.float32),
        )
        grey = tf.image.resize(tf.image.rgb_to_grayscale(pixels), (THUMBNAIL, THUMBNAIL), method="area")
        return (
            pixels,
            tf.reshape(grey, [-1, THUMBNAIL * THUMBNAIL]),
            parsed["label"],
            parsed["sha256"],
            parsed["filename"],
        )

    dataset = (
        tf.data.TFRecordDataset(examples.shards(split))
        .batch(batch_size)
        .map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .prefetch(2)
    )
    grids, pooled, thumbnails, labels, digests, names = [], [], [], [], [], []
    for pixels, grey, label, sha256, filename in dataset:
        grid, vector = embed(pixels)
        grids.append(grid.numpy())
        pooled.append(vector.numpy())
        thumbnails.append(_pearson_rows(grey.numpy()))
        labels.append(label.numpy())
        digests.extend(d.decode() for d in sha256.numpy())
        names.extend(n.decode() for n in filename.numpy())
    return {
        "grid": np.concatenate(grids),
        "pooled": np.concatenate(pooled),
        "thumbnail": np.concatenate(thumbnails),
        "labels": np.concatenate(labels).astype(np.int64),
        "sha256": digests,
        "filename": names,
    }


def _pearson_rows(rows: np.ndarray) -> np.ndarray:
    """Each row minus its own mean, unit length: dot products are then Pearson correlations (brightness-proof)."""
    centered = rows - rows.mean(axis=1, keepdims=True)
    return (centered / np.maximum(np.linalg.norm(centered, axis=1, keepdims=True), 1e-6)).astype(np.float32)


def centered_unit(rows: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Rows minus the dataset mean, scaled to unit length, in place: cosine then measures what differs
    between images (ReLU features share a large positive mean that makes every raw cosine close to 1)."""
    rows -= mean
    rows /= np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
    return rows
