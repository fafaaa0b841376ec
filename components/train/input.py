"""The trainer's tf.data input: ingest shards in, batches of raw 0-255 images and int32 labels out.

API (used by the rest of the trainer and by the exporter's checks):

- `make_dataset(ingest_dir, split, image_size, batch_size, *, training, augment=None, seed=0,
  cache_budget_bytes=..., repeat=False)` -> `tf.data.Dataset` of
  `(images float32 [B, H, W, 3] in 0-255, labels int32 [B])`.
  `keep`: only the records whose sha256 is in it (`train.train_fraction`, chosen from the
  manifest by `components.common.ranking.stratified_subset`); the shards are never rewritten.
- The split's files and counts come from `schemas.artifacts.Examples`; `AugmentConfig`
  (components/train/config.py) says which training augmentations run and how strongly.

Why it is shaped this way:

- Evaluation (`training=False`) decodes and resizes with
  `components.common.image_ops.decode_and_resize`, the function the exported serving signatures
  call, so the model is validated on exactly what it will be served (no training/serving skew).
- Training decodes JPEGs with the fused `tf.image.decode_and_crop_jpeg`: only the random crop
  window is decoded, and when that window is at least twice the model's input size libjpeg scales
  it down by 2, 4 or 8 while decoding (its `ratio`). PNG records are decoded whole, then cropped.
- Then ONE bilinear resampling per image (`ImageProjectiveTransformV3` with an output size) does
  the resize, flip, rotation and zoom together, and contrast and brightness are two cheap
  elementwise ops. Done the tutorial way (resize, then `keras.layers.RandomFlip`,
  `RandomRotation`, `RandomZoom` over each batch) that is four passes over the pixels;
  `benchmarks/train_input.py` measures the difference. The parameter ranges are the Keras layers'.
- Every random number is drawn by stateless ops from a per-element seed (`tf.data.Dataset.random`),
  so a given `seed` gives the same batches on every run and different ones on every epoch.
- The split's encoded bytes (not decoded pixels: those would be ~50x larger) are cached in memory
  when the shards fit `cache_budget_bytes`, so epochs after the first read no files.
"""

import tensorflow as tf

import schemas
from components.common.errors import DataError, UsageError
from components.common.image_ops import decode_and_resize
from components.train.config import AugmentConfig
from schemas.artifacts import Examples

AUTOTUNE = tf.data.AUTOTUNE
DEFAULT_CACHE_BUDGET_BYTES = 1 << 30  # 1 GiB of encoded images
SHUFFLE_BUFFER_UNCACHED = 1024  # elements held for shuffling when the split is streamed from disk
_JPEG_RATIOS = (8, 4, 2, 1)  # libjpeg's DCT-domain downscaling factors, largest first


def _kept_by_sha256(keep) -> callable:
    """A `Dataset.filter` predicate on serialized records: True when the record's sha256 is in `keep`."""
    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant(sorted(keep), tf.string), tf.ones([len(keep)], tf.bool)),
        default_value=False,
    )
    spec = {"sha256": schemas.feature_spec()["sha256"]}

    def kept(record):
        return table.lookup(tf.io.parse_single_example(record, spec)["sha256"])

    return kept


def _parse(serialized):
    """Keep only what training needs: the encoded bytes, their format and the label."""
    spec = schemas.feature_spec()
    features = tf.io.parse_single_example(serialized, {k: spec[k] for k in ("image", "format", "label")})
    return features["image"], features["format"], tf.cast(features["label"], tf.int32)


def _crop_window(image_shape, augment: AugmentConfig, seed):
    """Random-resized-crop window (offset_y, offset_x, height, width) inside an image of `image_shape`."""
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        image_size=image_shape,
        bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]),
        seed=seed,
        min_object_covered=0.0,
        aspect_ratio_range=augment.crop_aspect,
        area_range=augment.crop_area,
        max_attempts=10,
    )
    return begin[0], begin[1], size[0], size[1]


def _decode_window(encoded, fmt, image_size, augment: AugmentConfig, seed):
    """Decode the random crop window (the whole image when cropping is off) as uint8 [h, w, 3].

    JPEGs go through the fused `decode_and_crop_jpeg`, with libjpeg scaling the window down by the
    largest of 8, 4, 2 that still leaves at least `image_size` (it crops after scaling, so the
    window is given in scaled coordinates). Other formats are decoded whole, then sliced.
    """

    def window(shape):
        if augment.crops:
            return _crop_window(shape, augment, seed)
        return tf.constant(0), tf.constant(0), shape[0], shape[1]

    def jpeg():
        y, x, h, w = window(tf.image.extract_jpeg_shape(encoded))
        fits = [tf.logical_and(h // r >= image_size[0], w // r >= image_size[1]) for r in _JPEG_RATIOS]
        branch = tf.argmax(tf.cast(tf.stack(fits + [True]), tf.int32), output_type=tf.int32)
        branches = [
            (
                lambda r=r: tf.image.decode_and_crop_jpeg(
                    encoded, tf.stack([y // r, x // r, h // r, w // r]), channels=3, ratio=r
                )
            )
            for r in _JPEG_RATIOS
        ]
        return tf.switch_case(branch, branches + [branches[-1]])  # the last: ratio 1

    def other():
        image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
        y, x, h, w = window(tf.shape(image))
        return tf.slice(image, tf.stack([y, x, 0]), tf.stack([h, w, 3]))

    image = tf.cond(tf.equal(fmt, "jpeg"), jpeg, other)
    image.set_shape([None, None, 3])
    return image


def _geometry(window_shape, image_size, flip, angle, zoom):
    """The projective transform taking output pixels to window pixels: resize, flip, rotate, zoom.

    In output pixel units around the centre, p = (flip * x, y); the sampled point is
    q = zoom * R(angle) p (zoom > 1 shows more of the window: zoom out, as `keras.layers.RandomZoom`),
    mapped into the window with half-pixel centres, as `tf.image.resize` does.
    """
    out_h, out_w = (float(v) for v in image_size)
    scale_y = tf.cast(window_shape[0], tf.float32) / out_h
    scale_x = tf.cast(window_shape[1], tf.float32) / out_w
    cos, sin = tf.cos(angle) * zoom, tf.sin(angle) * zoom
    px0, py0 = flip * (0.5 - out_w / 2), 0.5 - out_h / 2  # p of output pixel (0, 0)
    return tf.stack(
        [
            scale_x * cos * flip,
            -scale_x * sin,
            scale_x * (cos * px0 - sin * py0 + out_w / 2) - 0.5,
            scale_y * sin * flip,
            scale_y * cos,
            scale_y * (sin * px0 + cos * py0 + out_h / 2) - 0.5,
            0.0,
            0.0,
        ]
    )


def _train_example(image_size, augment: AugmentConfig):
    """Per example: decode the crop window, then one resampling does resize + flip + rotation + zoom,
    then contrast and brightness; all parameters drawn from the element's seed.

    One resampling instead of resize, then `RandomFlip`, `RandomRotation` and `RandomZoom` over the
    batch (each a full pass over the pixels) is what makes this input fast; the parameter ranges
    are those of the Keras layers (see `AugmentConfig`). The resampling is bilinear without
    antialiasing: libjpeg has already brought the window within 2x of the target size. It runs on
    uint8 pixels (about 10% less CPU than float32 here; the rounding is below JPEG's own quantisation).
    """
    two_pi = 2.0 * 3.141592653589793

    def example(element_seed, record):
        encoded, fmt, label = record
        window = _decode_window(encoded, fmt, image_size, augment, tf.stack([element_seed, tf.constant(0, tf.int64)]))
        u = tf.random.stateless_uniform([5], seed=tf.stack([element_seed, tf.constant(1, tf.int64)]), minval=-1.0)
        flip = tf.where(tf.logical_and(augment.flip, u[0] < 0.0), -1.0, 1.0)
        transform = _geometry(
            tf.shape(window), image_size, flip, u[1] * augment.rotation * two_pi, 1.0 + u[2] * augment.zoom
        )
        image = tf.raw_ops.ImageProjectiveTransformV3(
            images=window[None],
            transforms=transform[None],
            output_shape=tf.constant(image_size, tf.int32),
            fill_value=0.0,
            interpolation="BILINEAR",
            fill_mode="REFLECT",
        )[0]
        image = tf.cast(image, tf.float32)
        if augment.contrast:
            mean = tf.reduce_mean(image, axis=[0, 1], keepdims=True)
            image = (image - mean) * (1.0 + u[3] * augment.contrast) + mean
        if augment.brightness:
            image = image + u[4] * augment.brightness * 255.0
        image = tf.clip_by_value(image, 0.0, 255.0)
        image.set_shape([*image_size, 3])
        return image, label

    return example


def make_dataset(
    ingest_dir: str,
    split: str,
    image_size,
    batch_size: int,
    *,
    training: bool,
    augment: "AugmentConfig | None" = None,
    seed: int = 0,
    cache_budget_bytes: int = DEFAULT_CACHE_BUDGET_BYTES,
    repeat: bool = False,
    keep: "frozenset | None" = None,
) -> tf.data.Dataset:
    """Batches of `(images float32 [B, H, W, 3] 0-255, labels int32 [B])` from one split.

    image_size: (height, width), or one int for a square.
    training: shuffle (files and examples) and augment with `augment` (default `AugmentConfig()`);
        False: fixed order, no augmentation, the shared evaluation decode.
    cache_budget_bytes: cache the split's encoded bytes in memory when its shards total at most this.
    repeat: repeat forever (then pass `steps_per_epoch` to `fit`).
    keep: the sha256 of the examples to use (None: all of the split).
    Raises DataError when the split has no examples or no shards.
    """
    image_size = (int(image_size),) * 2 if isinstance(image_size, int) else tuple(int(s) for s in image_size)
    if batch_size < 1:
        raise UsageError(f"batch_size={batch_size}: must be at least 1")
    examples = Examples(ingest_dir)
    num_examples = sum(examples.class_counts(split, keep))
    if num_examples == 0:
        raise DataError(
            f"split {split!r} of {ingest_dir} has no examples (manifest.csv lists none): add images per class, "
            f"or change the split fractions so that {split!r} receives some"
        )
    files = examples.shards(split)
    augment = (augment or AugmentConfig()) if training else AugmentConfig.off()
    total_bytes = sum(tf.io.gfile.stat(path).length for path in files)

    ds = tf.data.Dataset.from_tensor_slices(files)
    if training:
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    ds = ds.interleave(
        tf.data.TFRecordDataset, cycle_length=min(len(files), 8), num_parallel_calls=AUTOTUNE, deterministic=True
    )
    if keep is not None:
        ds = ds.filter(_kept_by_sha256(keep))
    ds = ds.map(_parse, num_parallel_calls=AUTOTUNE)
    if not repeat:  # Keras then knows each epoch's length (no "ran out of data" at an epoch's end), and a
        ds = ds.apply(tf.data.experimental.assert_cardinality(num_examples))  # shard/manifest mismatch fails
    cached = total_bytes <= cache_budget_bytes
    if cached:
        ds = ds.cache()
    if training:
        buffer = num_examples if cached else min(num_examples, SHUFFLE_BUFFER_UNCACHED)
        ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    if training and not augment.is_off:
        element_seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        ds = tf.data.Dataset.zip(element_seeds, ds).map(
            _train_example(image_size, augment), num_parallel_calls=AUTOTUNE
        )
    else:
        ds = ds.map(
            lambda encoded, fmt, label: (decode_and_resize(encoded, image_size), label), num_parallel_calls=AUTOTUNE
        )
    return ds.batch(batch_size, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)
