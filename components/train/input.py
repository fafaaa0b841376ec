"""The trainer's tf.data input: ingest shards in, batches of raw 0-255 images and int32 labels out.

API (used by the rest of the trainer and by the exporter's checks):

- `make_dataset(ingest_dir, split, image_size, batch_size, *, training, augment=None, seed=0,
  cache_budget_bytes=..., repeat=False)` -> `tf.data.Dataset` of
  `(images float32 [B, H, W, 3] in 0-255, labels int32 [B])`.
- `AugmentConfig`: which training augmentations run and how strongly (`AugmentConfig.off()`
  turns them all off; random-resized-crop included).
- `read_labels(ingest_dir)`, `count_examples(ingest_dir, split)`, `class_counts(ingest_dir, split)`:
  cheap reads of `labels.txt` and `manifest.csv`.

Why it is shaped this way:

- Evaluation (`training=False`) decodes and resizes with
  `components.common.image_ops.decode_and_resize`, the function the exported serving signatures
  call, so the model is validated on exactly what it will be served (no training/serving skew).
- Training decodes JPEGs with the fused `tf.image.decode_and_crop_jpeg`: only the random crop
  window is decoded, and when that window is at least twice the model's input size libjpeg scales
  it down by 2, 4 or 8 while decoding (its `ratio`), which is where most of the time goes on
  photo-sized images. PNG records are decoded whole, then cropped. Both are then resized with the
  same bilinear, antialiased resize as evaluation.
- The crop is sampled with stateless ops seeded per element from `tf.data.Dataset.random`, so a
  given `seed` gives the same crops on every run and different crops on every epoch.
- The other augmentations are Keras preprocessing layers (flip, rotation, zoom, contrast,
  brightness) applied to whole batches, which vectorises them.
- The split's encoded bytes (not decoded pixels: those would be ~50x larger) are cached in memory
  when the shards fit `cache_budget_bytes`, so epochs after the first read no files.
"""
import csv
import dataclasses
import os

import keras
import tensorflow as tf

import schemas
from components.common.errors import DataError, UsageError
from components.common.image_ops import decode_and_resize, resize_for_model

AUTOTUNE = tf.data.AUTOTUNE
DEFAULT_CACHE_BUDGET_BYTES = 1 << 30  # 1 GiB of encoded images
SHUFFLE_BUFFER_UNCACHED = 1024  # elements held for shuffling when the split is streamed from disk
_JPEG_RATIOS = (8, 4, 2, 1)  # libjpeg's DCT-domain downscaling factors, largest first


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """Training augmentations; each is off at 0 (or False). Evaluation never augments.

    crop_area: random-resized-crop, range of the crop's fraction of the image area ((1, 1): off).
    crop_aspect: range of the crop's width/height ratio.
    flip: random horizontal flip.
    rotation: maximum rotation, as a fraction of a full turn (0.05 = +/-18 degrees).
    zoom: maximum zoom in or out, as a fraction of the image size (`keras.layers.RandomZoom`).
    contrast: maximum contrast change, as a fraction (`keras.layers.RandomContrast`).
    brightness: maximum brightness shift, as a fraction of 255 (`keras.layers.RandomBrightness`).
    """

    crop_area: tuple = (0.6, 1.0)
    crop_aspect: tuple = (3 / 4, 4 / 3)
    flip: bool = True
    rotation: float = 0.05
    zoom: float = 0.1
    contrast: float = 0.2
    brightness: float = 0.2

    @classmethod
    def off(cls) -> "AugmentConfig":
        """No augmentation at all (images are only decoded and resized, as for evaluation)."""
        return cls(crop_area=(1.0, 1.0), crop_aspect=(1.0, 1.0), flip=False, rotation=0.0, zoom=0.0,
                   contrast=0.0, brightness=0.0)

    def __post_init__(self):
        lo, hi = self.crop_area
        if not 0.0 < lo <= hi <= 1.0:
            raise UsageError(f"augment.crop_area={self.crop_area}: needs 0 < low <= high <= 1 (fraction of the image area)")
        lo, hi = self.crop_aspect
        if not 0.0 < lo <= hi:
            raise UsageError(f"augment.crop_aspect={self.crop_aspect}: needs 0 < low <= high (width/height ratios)")
        for name, top in (("rotation", 0.5), ("zoom", 0.9), ("contrast", 1.0), ("brightness", 1.0)):
            value = getattr(self, name)
            if not 0.0 <= value <= top:
                raise UsageError(f"augment.{name}={value}: must be between 0 (off) and {top}")

    @property
    def crops(self) -> bool:
        return tuple(self.crop_area) != (1.0, 1.0)


def read_labels(ingest_dir: str) -> list:
    """Class names from `<ingest_dir>/labels.txt`; line number = integer label."""
    path = os.path.join(ingest_dir, "labels.txt")
    if not tf.io.gfile.exists(path):
        raise DataError(f"{path} not found: {ingest_dir} is not an ingest output (run the ingest step first)")
    with tf.io.gfile.GFile(path) as f:
        return [line.rstrip("\n") for line in f if line.strip()]


def _manifest_rows(ingest_dir: str, split: str) -> list:
    path = os.path.join(ingest_dir, "manifest.csv")
    if not tf.io.gfile.exists(path):
        raise DataError(f"{path} not found: {ingest_dir} is not an ingest output (run the ingest step first)")
    with tf.io.gfile.GFile(path) as f:
        return [row for row in csv.DictReader(f) if row["split"] == split]


def count_examples(ingest_dir: str, split: str) -> int:
    """Number of examples in `split`, from `manifest.csv` (no shard is read)."""
    return len(_manifest_rows(ingest_dir, split))


def class_counts(ingest_dir: str, split: str) -> list:
    """Examples per class in `split` (index = label), from `manifest.csv`; for class weights."""
    counts = [0] * len(read_labels(ingest_dir))
    for row in _manifest_rows(ingest_dir, split):
        counts[int(row["label"])] += 1
    return counts


def shard_paths(ingest_dir: str, split: str) -> list:
    """The split's TFRecord shards: `<ingest_dir>/data/<dataset>/<version>/<dataset>-<split>.tfrecord-*`."""
    return sorted(tf.io.gfile.glob(os.path.join(ingest_dir, "data", "*", "*", f"*-{split}.tfrecord-*")))


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


def _decode_jpeg_crop(encoded, image_size, augment, seed):
    """Decode only the crop window, scaled down by libjpeg when the window is >= 2x the target."""
    shape = tf.image.extract_jpeg_shape(encoded)
    y, x, h, w = _crop_window(shape, augment, seed)
    # The largest ratio that still leaves at least the target size; the window is then given in
    # the scaled image's coordinates (libjpeg crops after scaling).
    fits = [tf.logical_and(h // r >= image_size[0], w // r >= image_size[1]) for r in _JPEG_RATIOS]
    branch = tf.argmax(tf.cast(tf.stack(fits + [True]), tf.int32))  # first ratio that fits, else 1
    branches = [
        (lambda r=r: tf.image.decode_and_crop_jpeg(encoded, tf.stack([y // r, x // r, h // r, w // r]),
                                                   channels=3, ratio=r))
        for r in _JPEG_RATIOS
    ]
    branches.append(branches[-1])
    return tf.switch_case(tf.cast(branch, tf.int32), branches)


def _decode_other_crop(encoded, augment, seed):
    image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
    y, x, h, w = _crop_window(tf.shape(image), augment, seed)
    return tf.slice(image, tf.stack([y, x, 0]), tf.stack([h, w, 3]))


def _train_decoder(image_size, augment: AugmentConfig):
    def decode(element_seed, record):
        encoded, fmt, label = record
        seed = tf.stack([element_seed, tf.constant(0, tf.int64)])
        if augment.crops:
            image = tf.cond(
                tf.equal(fmt, "jpeg"),
                lambda: _decode_jpeg_crop(encoded, image_size, augment, seed),
                lambda: _decode_other_crop(encoded, augment, seed),
            )
            image.set_shape([None, None, 3])
            return resize_for_model(image, image_size), label
        return decode_and_resize(encoded, image_size), label

    return decode


def augmentation_layers(augment: AugmentConfig, seed: int = 0) -> list:
    """The Keras layers that augment batches of float 0-255 images (the benchmark reuses them)."""
    layers = []
    if augment.flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed))
    if augment.rotation:
        layers.append(keras.layers.RandomRotation(augment.rotation, fill_mode="reflect", seed=seed + 1))
    if augment.zoom:
        layers.append(keras.layers.RandomZoom(augment.zoom, fill_mode="reflect", seed=seed + 2))
    if augment.contrast:
        layers.append(keras.layers.RandomContrast(augment.contrast, value_range=(0, 255), seed=seed + 3))
    if augment.brightness:
        layers.append(keras.layers.RandomBrightness(augment.brightness, value_range=(0, 255), seed=seed + 4))
    return layers


def _batch_augmenter(augment: AugmentConfig, seed: int):
    layers = augmentation_layers(augment, seed)

    def apply(images, labels):
        for layer in layers:
            images = layer(images, training=True)
        return tf.clip_by_value(images, 0.0, 255.0), labels

    return apply if layers else None


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
) -> tf.data.Dataset:
    """Batches of `(images float32 [B, H, W, 3] 0-255, labels int32 [B])` from one split.

    training: shuffle (files and examples) and augment with `augment` (default `AugmentConfig()`);
        False: fixed order, no augmentation, the shared evaluation decode.
    cache_budget_bytes: cache the split's encoded bytes in memory when its shards total at most this.
    repeat: repeat forever (then pass `steps_per_epoch` to `fit`).
    Raises DataError when the split has no examples or no shards.
    """
    image_size = tuple(int(s) for s in image_size)
    if batch_size < 1:
        raise UsageError(f"batch_size={batch_size}: must be at least 1")
    files = shard_paths(ingest_dir, split)
    num_examples = count_examples(ingest_dir, split)
    if not files or num_examples == 0:
        raise DataError(
            f"split {split!r} of {ingest_dir} has no examples (manifest.csv lists {num_examples}, "
            f"{len(files)} shard files found): add images per class, or change the split fractions so "
            f"that {split!r} receives some"
        )
    augment = (augment or AugmentConfig()) if training else AugmentConfig.off()
    total_bytes = sum(tf.io.gfile.stat(path).length for path in files)

    ds = tf.data.Dataset.from_tensor_slices(files)
    if training:
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    ds = ds.interleave(tf.data.TFRecordDataset, cycle_length=min(len(files), 8), num_parallel_calls=AUTOTUNE,
                       deterministic=True)
    ds = ds.map(_parse, num_parallel_calls=AUTOTUNE)
    cached = total_bytes <= cache_budget_bytes
    if cached:
        ds = ds.cache()
    if training:
        buffer = num_examples if cached else min(num_examples, SHUFFLE_BUFFER_UNCACHED)
        ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    if training:
        element_seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        ds = tf.data.Dataset.zip(element_seeds, ds).map(_train_decoder(image_size, augment), num_parallel_calls=AUTOTUNE)
    else:
        ds = ds.map(lambda encoded, fmt, label: (decode_and_resize(encoded, image_size), label),
                    num_parallel_calls=AUTOTUNE)
    ds = ds.batch(batch_size, num_parallel_calls=AUTOTUNE)
    augmenter = _batch_augmenter(augment, seed) if training else None
    if augmenter is not None:
        ds = ds.map(augmenter, num_parallel_calls=AUTOTUNE)
    return ds.prefetch(AUTOTUNE)
