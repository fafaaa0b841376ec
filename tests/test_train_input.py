"""The trainer's tf.data input: what the model is fed for training and for evaluation."""

import os

import numpy as np
import pytest
import tensorflow as tf

import schemas
from components.common.errors import DataError, UsageError
from components.common.image_ops import decode_and_resize
from components.train import input as train_input
from components.train.config import AugmentConfig, TrainAugment, TrainConfig
from components.train.input import make_dataset
from schemas.artifacts import Examples
from tests.ingest_format import ImageRecord, encode, write_ingest_dir, write_synthetic_ingest_dir

SIZE = (32, 32)


@pytest.fixture(scope="module")
def ingest_dir(tmp_path_factory):
    """Three classes, JPEG and PNG records, two shards per split (train 24, val 12, test 12)."""
    return write_synthetic_ingest_dir(
        tmp_path_factory.mktemp("ingest"), fmt="mixed", shards_per_split=2, tfds_metadata=False
    )


def _epoch(ds):
    images, labels = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
    return np.concatenate(images), np.concatenate(labels)


def _records(ingest_dir, split):
    """(encoded, label) of every record of a split, read straight from the shards."""
    spec = schemas.feature_spec()
    out = []
    for path in Examples(ingest_dir).shards(split):
        for serialized in tf.data.TFRecordDataset(path):
            example = tf.io.parse_single_example(serialized, spec)
            out.append((example["image"], int(example["label"])))
    return out


def test_training_batches_are_raw_pixels_and_int32_labels_covering_the_split(ingest_dir):
    ds = make_dataset(ingest_dir, "train", SIZE, 5, training=True)
    assert ds.element_spec[0] == tf.TensorSpec((None, *SIZE, 3), tf.float32)
    assert ds.element_spec[1] == tf.TensorSpec((None,), tf.int32)
    images, labels = _epoch(ds)
    assert images.shape == (24, *SIZE, 3)
    assert images.min() >= 0.0 and images.max() <= 255.0 and images.max() > 1.0  # 0-255, not rescaled
    assert sorted(labels.tolist()) == sorted(label for _, label in _records(ingest_dir, "train"))


def _by_content(images, labels):
    """Sort a (shuffled or interleaved) epoch into a canonical order, keeping image-label pairs."""
    order = np.argsort(images.reshape(len(images), -1).sum(axis=1))
    return images[order], np.asarray(labels)[order]


def test_evaluation_is_exactly_the_shared_serving_decode_in_a_fixed_order(ingest_dir):
    images, labels = _epoch(make_dataset(ingest_dir, "val", SIZE, 5, training=False))
    again, labels_again = _epoch(make_dataset(ingest_dir, "val", SIZE, 5, training=False))
    np.testing.assert_array_equal(images, again)
    np.testing.assert_array_equal(labels, labels_again)
    records = _records(ingest_dir, "val")
    expected = np.stack([decode_and_resize(encoded, SIZE).numpy() for encoded, _ in records])
    got, want = _by_content(images, labels), _by_content(expected, [label for _, label in records])
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])


def test_training_without_augmentation_decodes_like_evaluation(ingest_dir):
    train = _by_content(*_epoch(make_dataset(ingest_dir, "val", SIZE, 4, training=True, augment=AugmentConfig.off())))
    evaluation = _by_content(*_epoch(make_dataset(ingest_dir, "val", SIZE, 4, training=False)))
    np.testing.assert_array_equal(train[0], evaluation[0])
    np.testing.assert_array_equal(train[1], evaluation[1])


def test_training_is_reproducible_by_seed_and_differs_between_epochs(ingest_dir):
    def first_epochs(seed, epochs=1):
        iterator = iter(make_dataset(ingest_dir, "train", SIZE, 24, training=True, seed=seed, repeat=True))
        return [next(iterator)[0].numpy() for _ in range(epochs)]

    epoch1, epoch2 = first_epochs(seed=3, epochs=2)
    np.testing.assert_array_equal(epoch1, first_epochs(seed=3)[0])
    assert not np.array_equal(epoch1, epoch2)
    assert not np.array_equal(epoch1, first_epochs(seed=4)[0])
    # Without repeat, Keras's fit iterates the dataset afresh each epoch: that must differ too.
    once = make_dataset(ingest_dir, "train", SIZE, 24, training=True, seed=3)
    first, second = (next(iter(once))[0].numpy() for _ in range(2))
    np.testing.assert_array_equal(first, epoch1)
    assert not np.array_equal(first, second)


def test_augmentation_changes_the_pixels(ingest_dir):
    plain, _ = _epoch(make_dataset(ingest_dir, "train", SIZE, 24, training=True, augment=AugmentConfig.off(), seed=1))
    augmented, _ = _epoch(make_dataset(ingest_dir, "train", SIZE, 24, training=True, seed=1))
    sums = lambda batch: np.sort(batch.reshape(len(batch), -1).sum(axis=1))  # noqa: E731
    assert not np.allclose(sums(plain), sums(augmented))


def test_scaled_jpeg_crop_shows_the_same_region_as_a_full_decode():
    """The fused crop decodes a 1200x900 photo at 1/2-1/8 scale; it must still show the sampled window."""
    yy, xx = np.mgrid[0:900, 0:1200]
    photo = np.stack([yy * 255 / 900, xx * 255 / 1200, (yy + xx) * 255 / 2100], -1).astype(np.uint8)
    encoded = tf.constant(encode(photo, "jpeg", quality=95))
    augment = AugmentConfig(crop_area=(0.3, 1.0))
    for element_seed in range(4):
        seed = tf.constant([element_seed, 0], tf.int64)
        y, x, h, w = (int(v) for v in train_input._crop_window(tf.constant([900, 1200, 3]), augment, seed))
        fused = train_input._decode_window(encoded, tf.constant("jpeg"), (96, 96), augment, seed)
        assert min(fused.shape[:2]) < min(h, w)  # it was decoded at a reduced scale
        got = decode_and_resize(tf.io.encode_png(fused), (96, 96)).numpy()
        want = tf.image.resize(photo[y : y + h, x : x + w].astype(np.float32), (96, 96), antialias=True).numpy()
        assert np.abs(got - want).mean() < 3.0


def test_the_single_resampling_is_a_resize_flip_rotation_and_zoom():
    """`_geometry` replaces tf.image.resize + flip + rotation + zoom; check it against those ops."""
    window = tf.constant(np.random.default_rng(0).uniform(0, 255, (64, 48, 3)), tf.float32)

    def sample(size, flip=1.0, angle=0.0, zoom=1.0):
        transform = train_input._geometry(
            tf.shape(window), size, tf.constant(flip), tf.constant(angle), tf.constant(zoom)
        )
        return tf.raw_ops.ImageProjectiveTransformV3(
            images=window[None],
            transforms=transform[None],
            output_shape=tf.constant(size, tf.int32),
            fill_value=0.0,
            interpolation="BILINEAR",
            fill_mode="REFLECT",
        )[0].numpy()

    np.testing.assert_allclose(sample((64, 48)), window.numpy(), atol=1e-3)  # identity
    np.testing.assert_allclose(sample((32, 24)), tf.image.resize(window, (32, 24)).numpy(), atol=1e-3)
    np.testing.assert_allclose(sample((64, 48), flip=-1.0), tf.image.flip_left_right(window).numpy(), atol=1e-3)
    square = window[:48]
    window = square
    quarter_turn = sample((48, 48), angle=np.pi / 2)
    assert any(np.allclose(quarter_turn, tf.image.rot90(square, k).numpy(), atol=1e-2) for k in (1, 3))
    zoomed_in = sample((48, 48), zoom=0.5)  # the central half, enlarged (borders differ: resize clamps)
    central = tf.image.resize(square[12:36, 12:36], (48, 48)).numpy()
    np.testing.assert_allclose(zoomed_in[2:-2, 2:-2], central[2:-2, 2:-2], atol=1e-3)


def test_cached_split_is_read_from_disk_only_once(tmp_path):
    cached_dir = write_synthetic_ingest_dir(tmp_path / "cached", tfds_metadata=False)
    streamed_dir = write_synthetic_ingest_dir(tmp_path / "streamed", tfds_metadata=False)
    cached = make_dataset(cached_dir, "val", SIZE, 4, training=True)
    streamed = make_dataset(streamed_dir, "val", SIZE, 4, training=True, cache_budget_bytes=0)
    assert len(_epoch(cached)[0]) == len(_epoch(streamed)[0]) == 12
    for directory in (cached_dir, streamed_dir):
        for path in Examples(directory).shards("val"):
            os.remove(path)
    assert len(_epoch(cached)[0]) == 12  # second epoch from memory
    with pytest.raises(tf.errors.NotFoundError):
        _epoch(streamed)


def test_repeat_yields_past_the_end_of_the_split(ingest_dir):
    ds = make_dataset(ingest_dir, "val", SIZE, 5, training=True, repeat=True)
    assert sum(len(y) for _, y in ds.take(6)) == 30  # 12 examples, repeated


def test_a_split_with_no_examples_is_a_data_error(tmp_path):
    image = np.zeros((20, 20, 3), np.uint8)
    directory = write_ingest_dir(
        tmp_path / "i",
        [ImageRecord("train", 0, image), ImageRecord("train", 1, image)],
        ["a", "b"],
        tfds_metadata=False,
    )
    with pytest.raises(DataError, match="split 'val'.*no examples"):
        make_dataset(directory, "val", SIZE, 4, training=False)
    with pytest.raises(DataError, match="not found: the ingest output .* is incomplete"):
        make_dataset(str(tmp_path / "missing"), "train", SIZE, 4, training=True)


def test_counts_and_labels_come_from_the_manifest(ingest_dir):
    examples = Examples(ingest_dir)
    assert examples.labels() == ["cat", "dog", "fish"]
    assert sum(examples.class_counts("train")) == 24
    assert examples.class_counts("val") == [4, 4, 4]


def test_bad_augmentation_settings_are_usage_errors():
    with pytest.raises(UsageError, match="train.augment.crop_area"):
        AugmentConfig(crop_area=(0.0, 1.0)).validate()
    with pytest.raises(UsageError, match="train.augment.rotation"):
        TrainConfig(augment=TrainAugment(rotation=2.0)).validate()
