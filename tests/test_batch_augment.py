"""Batch-level augmentations (RandAugment, MixUp, CutMix): what they do to a batch, and that a
seed fixes them; plus a tiny training run with all of them on."""

import numpy as np
import pytest
import tensorflow as tf

from components.common.errors import UsageError
from components.train import TrainConfig, batch_augment, run
from components.train.config import AugmentConfig, StageConfig
from tests.ingest_format import write_synthetic_ingest_dir

K = 3


def _batches(augment: AugmentConfig, seed=0, batches=4):
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, size=(batches * 8, 32, 32, 3)).astype("float32")
    labels = tf.one_hot(np.arange(batches * 8) % K, K)
    ds = tf.data.Dataset.from_tensor_slices((images, labels)).batch(8)
    out = [(x.numpy(), y.numpy()) for x, y in batch_augment.apply(ds, augment, seed)]
    return images, labels.numpy(), np.concatenate([x for x, _ in out]), np.concatenate([y for _, y in out])


def test_all_off_returns_the_dataset_unchanged():
    images, labels, got, got_labels = _batches(AugmentConfig())
    np.testing.assert_array_equal(got, images)
    np.testing.assert_array_equal(got_labels, labels)


def test_mixup_mixes_images_and_labels_in_the_same_proportion():
    images, labels, got, got_labels = _batches(AugmentConfig(mixup=1.0))
    np.testing.assert_allclose(got_labels.sum(axis=1), 1.0, atol=1e-5)
    assert (got_labels.max(axis=1) < 0.999).mean() > 0.5, "most labels are mixtures"
    assert got.min() >= 0 and got.max() <= 255 and not np.allclose(got, images)


def test_cutmix_pastes_a_box_and_mixes_labels_by_its_area():
    images, labels, got, got_labels = _batches(AugmentConfig(cutmix=1.0))
    np.testing.assert_allclose(got_labels.sum(axis=1), 1.0, atol=1e-5)
    changed = np.any(got != images, axis=-1).mean(axis=(1, 2))  # fraction of pixels replaced, per image
    own = (got_labels * labels).sum(axis=1)
    mixed = changed > 0
    assert mixed.mean() > 0.5
    # CutMix replaces pixels (no blending) and the label share kept follows the area kept. Not exactly:
    # an image mixed with one of its own class keeps all its label, and Keras takes the share from the
    # drawn box before clipping it at the image's edges.
    assert np.corrcoef(own[mixed], 1.0 - changed[mixed])[0, 1] > 0.8
    assert np.median(np.abs(own[mixed] - (1.0 - changed[mixed]))) < 0.05


def test_randaugment_changes_pixels_keeps_range_and_labels():
    images, labels, got, got_labels = _batches(AugmentConfig(randaugment_ops=2, randaugment_magnitude=1.0), batches=8)
    np.testing.assert_array_equal(got_labels, labels)
    assert got.shape == images.shape and got.min() >= 0 and got.max() <= 255
    per_batch = [not np.allclose(got[i : i + 8], images[i : i + 8]) for i in range(0, len(images), 8)]
    assert sum(per_batch) >= 4, "two ops drawn from 14 (one is identity): most batches change"


@pytest.mark.parametrize("augment", [AugmentConfig(mixup=0.4, cutmix=1.0, randaugment_ops=2)])
def test_a_seed_gives_the_same_batches_and_another_seed_others(augment):
    _, _, a, la = _batches(augment, seed=3)
    _, _, b, lb = _batches(augment, seed=3)
    _, _, c, _ = _batches(augment, seed=4)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(la, lb)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"randaugment_ops": 5}, "randaugment_ops"),
        ({"randaugment_ops": 1.5}, "randaugment_ops"),
        ({"randaugment_magnitude": 0.0}, "randaugment_magnitude"),
        ({"mixup": -0.1}, "mixup"),
        ({"cutmix": 11.0}, "cutmix"),
    ],
)
def test_bad_values_are_usage_errors_naming_the_key(changes, field):
    with pytest.raises(UsageError, match=rf"train\.augment\.{field}="):
        AugmentConfig(**changes).validate()


@pytest.mark.slow  # trains: the full tier only
def test_training_with_every_batch_augmentation_runs_and_records_it(tmp_path):
    ingest = write_synthetic_ingest_dir(tmp_path / "ingest", fmt="mixed", shards_per_split=1, tfds_metadata=False)
    augment = AugmentConfig(randaugment_ops=2, mixup=0.2, cutmix=1.0)
    config = TrainConfig(
        image_size=32,
        weights="none",
        batch_size=8,
        augment=augment,
        bn_recalibration_batches=2,
        precision="mixed_bfloat16",  # the layers are built under the policy: they must stay float32
        stages=(StageConfig("scratch", epochs=2, learning_rate=1e-3, unfreeze="all", augment=True),),
    )
    result = run(config, str(ingest), str(tmp_path / "train"))
    assert len(result.stages) == 1 and result.stages[0].epochs_run == 2
    assert 0.0 <= result.test_accuracy <= 1.0
