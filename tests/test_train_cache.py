"""The frozen head stage trained on cached backbone features is the same training as the uncached one.

Unit level: the cached features are exactly the full model's pooled features, and the head model
fitted on them shares its weights with the full model. End to end on the sign-language folder
with the pretrained backbone in ../shared/weights: a head stage on cached features reaches the
same validation accuracy (full model, inference mode) as the same stage fed with images.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from components.train import StageConfig, TrainConfig, feature_cache, run
from components.train.backbones import build_backbone
from components.train.model import assemble, build_head, head_model

pytestmark = pytest.mark.slow  # seconds to minutes per test: the full tier only (pytest.ini)

HEAD_TOLERANCE = 0.05  # absolute validation accuracy; the runs differ only in shuffling order and dropout draws


def test_cached_features_are_the_models_pooled_features_and_the_head_is_shared():
    keras.utils.set_random_seed(0)
    preprocessing, backbone = build_backbone("MobileNetV2", 32, "none", alpha=0.35)
    head = build_head(4, 0.0)
    model = assemble(preprocessing, backbone, head, 32, backbone_trains_bn=False)
    images = np.random.default_rng(0).uniform(0, 255, (10, 32, 32, 3)).astype("float32")
    labels = np.eye(4, dtype="float32")[np.arange(10) % 4]
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(4)

    extractor = feature_cache.feature_extractor(model.input, model.get_layer("head_pool").output)
    features, cached_labels = feature_cache.extract(extractor, dataset)
    expected = keras.Model(model.input, model.get_layer("head_pool").output).predict(images, verbose=0)
    np.testing.assert_allclose(features, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(cached_labels, labels)

    on_features = head_model(head, features.shape[-1])
    np.testing.assert_allclose(
        on_features.predict(features, verbose=0), model.predict(images, verbose=0), rtol=1e-5, atol=1e-6
    )
    on_features.get_layer("head_dense").bias.assign(np.array([5.0, 0, 0, 0], "float32"))
    assert model.predict(images, verbose=0).argmax(axis=1).tolist() == [0] * 10  # same variables


def _head_only(weights: str, cache: bool) -> TrainConfig:
    return TrainConfig(
        weights=weights,
        image_size=96,
        batch_size=32,
        evaluate_test=False,
        cache_features=cache,
        stages=(StageConfig("head", epochs=4, learning_rate=3e-3, cosine_decay=False),),
    )


def test_cached_head_stage_matches_the_uncached_one(ingested_sign_digits, shared_weights_dir, tmp_path):
    weights = str(shared_weights_dir / "mobilenetv2_0.35_96_cifar6_notop.keras")
    cached = run(_head_only(weights, cache=True), str(ingested_sign_digits), str(tmp_path / "cached"))
    uncached = run(_head_only(weights, cache=False), str(ingested_sign_digits), str(tmp_path / "uncached"))
    assert cached.stages[0].cached_features and not uncached.stages[0].cached_features
    print(f"head stage val accuracy: cached {cached.best_val_accuracy:.3f}, uncached {uncached.best_val_accuracy:.3f}")
    assert cached.best_val_accuracy > 0.3  # chance is 0.1: both learned
    assert abs(cached.best_val_accuracy - uncached.best_val_accuracy) <= HEAD_TOLERANCE
