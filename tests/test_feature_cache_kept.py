"""The frozen head stage's backbone features kept across runs (feature_cache.extract_kept): the same
vectors the backbone computes, computed once per image and backbone, reused by a later full retrain."""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from components.common.image_ops import decode_and_resize
from components.common.image_results import ImageResults, record_keys
from components.train import StageConfig, TrainConfig, feature_cache, run
from components.train.backbones import build_backbone
from schemas import feature_spec
from schemas.artifacts import Examples
from tests.ingest_format import write_synthetic_ingest_dir

SIZE = 32


@pytest.fixture(scope="module")
def extractor():
    keras.utils.set_random_seed(0)
    preprocessing, backbone = build_backbone("MobileNetV2", SIZE, "none", alpha=0.35)
    inputs = keras.Input((SIZE, SIZE, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(backbone(preprocessing(inputs), training=False))
    return feature_cache.feature_extractor(inputs, pooled)


@pytest.fixture(scope="module")
def ingest(tmp_path_factory):
    return write_synthetic_ingest_dir(
        tmp_path_factory.mktemp("kept") / "ingest",
        labels=("a", "b", "c"),
        image_size=(40, 48),
        per_split={"train": 6, "val": 3, "test": 2},
        tfds_metadata=False,
    )


def _direct(extractor, shards) -> np.ndarray:
    """Each record's features computed on its own, in shard order: what a cache must give back."""
    rows = []
    for record in tf.data.TFRecordDataset(shards):
        image = tf.io.parse_single_example(record, feature_spec("image"))["image"]
        rows.append(extractor(decode_and_resize(image, (SIZE, SIZE))[None], training=False).numpy()[0])
    return np.stack(rows)


def test_features_are_computed_once_per_image_and_found_again(extractor, ingest, tmp_path):
    shards = Examples(ingest).shards("train")
    _, fields = record_keys(shards, feature_spec("image", "sha256", "label"))
    digests = [d.decode() for d in fields["sha256"]]
    expected = _direct(extractor, shards)
    kept = ImageResults(str(tmp_path), feature_cache.about(extractor, SIZE))

    half = frozenset(digests[::2])
    features, labels, reused = feature_cache.extract_kept(extractor, shards, SIZE, 4, half, kept)
    assert reused == 0 and len(features) == len(half)
    np.testing.assert_allclose(features, expected[::2], rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(labels, fields["label"][::2])

    again = ImageResults(str(tmp_path), feature_cache.about(extractor, SIZE))  # the next night's run
    features, labels, reused = feature_cache.extract_kept(extractor, shards, SIZE, 4, None, again)
    assert reused == len(half)  # only the other half went through the backbone
    np.testing.assert_allclose(features, expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(labels, fields["label"])

    _, _, reused = feature_cache.extract_kept(extractor, shards, SIZE, 4, None, again)
    assert reused == len(digests)


def test_other_weights_size_or_precision_are_another_computation(extractor):
    base = feature_cache.about(extractor, SIZE)
    assert feature_cache.about(extractor, SIZE) == base
    assert feature_cache.about(extractor, SIZE * 2) != base
    weight = extractor.weights[0]
    original = weight.numpy()
    try:
        weight.assign(original + 1e-3)
        assert feature_cache.about(extractor, SIZE)["head_features"] != base["head_features"]
    finally:
        weight.assign(original)
    previous = keras.config.dtype_policy()
    try:
        keras.config.set_dtype_policy("mixed_bfloat16")
        assert feature_cache.about(extractor, SIZE) != base
    finally:
        keras.config.set_dtype_policy(previous)


def test_a_second_full_retrain_reuses_every_image_and_trains_the_same(ingest, tmp_path):
    keras.utils.set_random_seed(0)
    _, backbone = build_backbone("MobileNetV2", SIZE, "none", alpha=0.35)  # stands in for pretrained weights
    weights = str(tmp_path / "backbone.weights.h5")
    backbone.save_weights(weights)
    keras.backend.clear_session()
    config = TrainConfig(
        weights=weights,
        alpha=0.35,
        image_size=SIZE,
        batch_size=4,
        evaluate_test=False,
        warm_start="none",
        stages=(StageConfig("head", epochs=2, learning_rate=1e-2, cosine_decay=False, warmup_epochs=0),),
    )
    cache = str(tmp_path / "cache")
    first = run(config, ingest, str(tmp_path / "first"), cache_dir=cache)
    second = run(config, ingest, str(tmp_path / "second"), cache_dir=cache)
    images = 3 * (6 + 3)  # train and val
    assert first.stages[0].cached_features and first.stages[0].features_reused == 0
    assert second.stages[0].features_reused == images
    assert "reused from earlier runs" in second.summary()
    # 9 val images: too few to early-stop or choose a stage on (issue 35); the trainer says so
    assert first.trust_warnings and "only 9 val images" in first.trust_warnings[0]
    assert "the last stage's model is kept" in first.trust_warnings[0]
    # Features are the same vectors, so the two head stages train alike (same seed, same order).
    assert abs(first.best_val_accuracy - second.best_val_accuracy) <= 1 / 9 + 1e-9
    other = run(dataclasses.replace(config, image_size=SIZE + 16), ingest, str(tmp_path / "other"), cache_dir=cache)
    assert other.stages[0].features_reused == 0  # another input size: computed again
