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

Which model embeds is `audit.embed_with`: "trained" (above), or "backbone", the same network with
the pretrained backbone weights it started from (what its head stage saw), whose vectors do not
change from one night to the next: they are kept per image (components/common/image_results.py)
and a nightly rerun embeds only the images it has not seen. benchmarks/audit_embeddings.py
measures both on planted label errors.

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
from components.common.image_results import record_keys, records_at
from schemas import feature_spec
from schemas.artifacts import Examples, Model

GRID = 3
GRID_CHANNELS = 128  # channels per grid cell after the random projection (when the backbone has more)
THUMBNAIL = 16  # side of the grey thumbnail that confirms a near-copy pixel by pixel


EMBEDDING_VERSION = 1  # bump when what an embedding is changes: kept embeddings are then computed again


def embedder(train_dir: str, embed_with: str = "trained"):
    """(pixels -> (grid [n, 9 * min(channels, GRID_CHANNELS)], pooled [n, channels]), image size, what
    computed the embeddings (the cache's key), a note when `embed_with` could not be honoured).

    embed_with: "trained" (the fine-tuned model) or "backbone" (the same network with the pretrained
    backbone weights it started from, as the head stage saw it: the same vectors every night, so
    they are kept per image across runs). "backbone" needs the weights as a file; with ImageNet's
    download or none, the trained model embeds and the note says so."""
    import keras

    from components.common.backbone_weights import BACKBONE_LAYER_NAME, load_file_weights
    from components.common.fileio import file_sha256
    from components.common.trained_model import HEAD_POOL, float32_rebuild, load_model

    trained = Model(train_dir)
    trained.require()
    info = trained.info()
    model = float32_rebuild(load_model(trained.model_path()))
    about = {"version": EMBEDDING_VERSION, "grid": [GRID, GRID_CHANNELS], "thumbnail": THUMBNAIL}
    weights, note = str(info.get("weights", "")), ""
    if embed_with == "backbone" and weights.endswith((".keras", ".h5")):
        load_file_weights(model.get_layer(BACKBONE_LAYER_NAME), weights, str(info.get("backbone")))
        about.update(
            backbone_weights=file_sha256(weights), backbone=info.get("backbone"), image_size=info["image_size"]
        )
    else:
        if embed_with == "backbone":
            note = f"audit.embed_with is backbone, but the pretrained weights ({weights!r}) are not a file: embedded with the trained model"
        about.update(model=file_sha256(trained.model_path()))
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

    return embed, tuple(int(x) for x in info["image_size"]), about, note


def embed_split(examples: Examples, split: str, embed, image_size, batch_size: int, kept=None) -> dict:
    """{"grid", "pooled", "thumbnail": float32 rows, "labels", "sha256", "filename", "reused"} of one
    split, in shard order.

    kept: an image_results.ImageResults of this embedder; images it holds (by the sha256 of the
    stored image bytes) are not decoded or embedded again, and the others are added to it. The
    records are read twice (what each is, then the images still to embed: parsed and decoded in
    parallel by tf.data while the model runs on the previous batch), which costs far less than
    decoding them.
    """
    shards = examples.shards(split)
    keys, fields = record_keys(shards, feature_spec("image", "label", "sha256", "filename"))
    known = kept.lookup(keys) if kept is not None else {}
    todo = [i for i, key in enumerate(keys) if key not in known]
    if todo:
        computed = _embed(shards, todo, embed, image_size, batch_size)
        if kept is not None:
            kept.add([keys[i] for i in todo], **computed)
        for row, i in enumerate(todo):
            known[keys[i]] = {field: values[row] for field, values in computed.items()}
    rows = [known[key] for key in keys]
    return {
        **{
            field: np.stack([row[field] for row in rows]).astype(np.float32)
            for field in ("grid", "pooled", "thumbnail")
        },
        "labels": fields["label"].astype(np.int64),
        "sha256": [d.decode() for d in fields["sha256"]],
        "filename": [n.decode() for n in fields["filename"]],
        "reused": len(keys) - len(todo),
    }


def _embed(shards: list, indices: list, embed, image_size, batch_size: int) -> dict:
    """{"grid", "pooled", "thumbnail"} of the records at `indices` (positions in `shards`' order)."""

    def parse(records):
        parsed = tf.io.parse_example(records, feature_spec("image"))
        pixels = tf.map_fn(
            lambda b: decode_and_resize(b, image_size),
            parsed["image"],
            fn_output_signature=tf.TensorSpec([*image_size, 3], tf.float32),
        )
        grey = tf.image.resize(tf.image.rgb_to_grayscale(pixels), (THUMBNAIL, THUMBNAIL), method="area")
        return pixels, tf.reshape(grey, [-1, THUMBNAIL * THUMBNAIL])

    dataset = (
        records_at(shards, indices)
        .batch(batch_size)
        .map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .prefetch(2)
    )
    grids, pooled, thumbnails = [], [], []
    for pixels, grey in dataset:
        grid, vector = embed(pixels)
        grids.append(grid.numpy())
        pooled.append(vector.numpy())
        thumbnails.append(_pearson_rows(grey.numpy()))
    return {"grid": np.concatenate(grids), "pooled": np.concatenate(pooled), "thumbnail": np.concatenate(thumbnails)}


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
