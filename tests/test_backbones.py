"""The backbone registry: every family builds on raw pixels with its weights' own preprocessing,
and every way of naming weights either loads them or says clearly why it cannot."""

import importlib

import keras
import numpy as np
import pytest

from components.common.errors import UsageError
from components.common.layers import CaffePreprocessing
from components.train import backbones, families, stages

pytestmark = pytest.mark.slow  # seconds to minutes per test: the full tier only (pytest.ini)

SHARED_BACKBONE = "mobilenetv2_0.35_96_cifar6_notop"


@pytest.fixture(autouse=True)
def _free_models():
    """Twenty-five backbones in one process: release each one's graph and weights after its test."""
    yield
    keras.backend.clear_session()


def _raw_pixels(size, batch=2, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (batch, size, size, 3)).astype("float32")


@pytest.mark.parametrize("name", families.names())
def test_every_backbone_builds_on_raw_pixels_with_its_weights_preprocessing(name):
    spec = families.get(name)
    preprocessing, backbone = backbones.build_backbone(name, spec.min_size, weights="none")
    x = _raw_pixels(spec.min_size)
    reference = importlib.import_module(f"keras.applications.{spec.module}").preprocess_input(x.copy())

    if spec.preprocessing == families.BUILTIN:
        # Keras documents preprocess_input as a pass-through for these families: their weights
        # expect 0-255, normalised by the model's own first layers, which must be present.
        assert preprocessing is None
        np.testing.assert_array_equal(reference, x)
        first = backbone.layers[1]
        assert isinstance(first, (keras.layers.Rescaling, keras.layers.Normalization)), first
        model_input = x
    else:
        model_input = np.asarray(preprocessing(x))
        np.testing.assert_allclose(model_input, reference, rtol=1e-5, atol=1e-4)

    features = np.asarray(backbone(model_input, training=False))
    assert backbone.name == backbones.BACKBONE_LAYER_NAME
    assert features.ndim == 4 and features.shape[0] == 2
    assert np.isfinite(features).all()

    # the default fine-tune stage's block exists and leaves the top fifth to third of the layers
    # (MobileNetV2: block_6, 65%, chosen by measurement: components/train/families.py)
    layers = [layer for layer in backbone.layers if not isinstance(layer, keras.layers.InputLayer)]
    share = (len(layers) - stages.first_unfrozen_index(backbone, spec.finetune_from)) / len(layers)
    low, high = (0.6, 0.7) if spec.name == "MobileNetV2" else (0.15, 0.40)
    assert low <= share <= high, f"{spec.finetune_from} leaves {share:.0%} of {name}'s layers trainable"


def test_unknown_backbone_lists_the_valid_names():
    with pytest.raises(UsageError) as err:
        backbones.build_backbone("ResNet9000", 96)
    for name in ("MobileNetV2", "EfficientNetB7", "EfficientNetV2S", "Xception", "VGG16"):
        assert name in str(err.value)


def test_names_match_ignoring_case_and_separators():
    assert families.get("mobilenet_v2").name == "MobileNetV2"
    assert families.get("efficientnet-v2-s").name == "EfficientNetV2S"
    assert families.get("CONVNEXTTINY").name == "ConvNeXtTiny"


def test_image_size_below_the_family_minimum_is_a_usage_error():
    with pytest.raises(UsageError, match="at least 71x71"):
        backbones.build_backbone("Xception", 64)
    with pytest.raises(UsageError, match="at least 32x32"):
        backbones.build_backbone("MobileNetV2", (96, 16))


def test_alpha_only_for_mobilenets():
    with pytest.raises(UsageError, match="width multiplier"):
        backbones.build_backbone("ResNet50V2", 32, alpha=0.5)


def test_caffe_preprocessing_survives_saving_and_loading(tmp_path):
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, CaffePreprocessing(name="preprocessing")(inputs))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    x = _raw_pixels(8)
    np.testing.assert_allclose(loaded(x), keras.applications.vgg16.preprocess_input(x.copy()), atol=1e-4)


def test_imagenet_download_failure_names_the_alternatives(monkeypatch):
    def offline(*args, **kwargs):  # what keras.utils.get_file raises without a network
        raise Exception("URL fetch failure on https://storage.googleapis.com/...: None -- [Errno -3] Temporary failure")

    monkeypatch.setattr("keras.src.utils.file_utils.get_file", offline)
    with pytest.raises(UsageError) as err:
        backbones.build_backbone("MobileNetV2", 96, weights="imagenet", alpha=0.35)
    assert "--weights PATH" in str(err.value) and "--weights none" in str(err.value)


def test_missing_or_foreign_weights_file_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="not found"):
        backbones.build_backbone("MobileNetV2", 32, weights=str(tmp_path / "nope.keras"))
    (tmp_path / "w.txt").write_text("not weights")
    with pytest.raises(UsageError, match=r"\.weights\.h5 or \.keras"):
        backbones.build_backbone("MobileNetV2", 32, weights=str(tmp_path / "w.txt"))


def test_shared_pretrained_backbone_loads_from_keras_and_h5_files(shared_weights_dir):
    # A different input size than the file's 96 px: the weights are copied, not the graph.
    _, from_keras = backbones.build_backbone(
        "MobileNetV2", 128, weights=str(shared_weights_dir / f"{SHARED_BACKBONE}.keras"), alpha=0.35
    )
    _, from_h5 = backbones.build_backbone(
        "MobileNetV2", 96, weights=str(shared_weights_dir / f"{SHARED_BACKBONE}.weights.h5"), alpha=0.35
    )
    _, fresh = backbones.build_backbone("MobileNetV2", 96, weights="none", alpha=0.35)
    pairs = list(zip(from_keras.get_weights(), from_h5.get_weights(), fresh.get_weights()))
    assert len(pairs) == len(fresh.weights)
    for a, b, _ in pairs:  # two files written separately agree variable by variable
        np.testing.assert_array_equal(a, b)
    assert not all(np.array_equal(a, c) for a, _, c in pairs)  # and they are not a fresh initialisation


def test_weights_of_another_architecture_are_refused(shared_weights_dir):
    with pytest.raises(UsageError, match="different architecture"):
        backbones.build_backbone(
            "MobileNetV2", 96, weights=str(shared_weights_dir / f"{SHARED_BACKBONE}.keras"), alpha=1.0
        )
    with pytest.raises(UsageError, match="does not fit"):
        backbones.build_backbone(
            "MobileNetV2", 96, weights=str(shared_weights_dir / f"{SHARED_BACKBONE}.weights.h5"), alpha=0.5
        )


def test_warm_start_reuses_the_backbone_of_a_model_this_pipeline_trained(tmp_path):
    preprocessing, backbone = backbones.build_backbone("MobileNetV2", 32, alpha=0.35)
    inputs = keras.Input((32, 32, 3))
    x = backbone(preprocessing(inputs), training=False)
    outputs = keras.layers.Dense(3, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
    trained = keras.Model(inputs, outputs)
    for variable in backbone.weights:  # make the weights distinguishable from a fresh build
        variable.assign(np.random.default_rng(1).normal(size=variable.shape).astype("float32"))
    trained.save(tmp_path / "model.keras")

    _, warm = backbones.build_backbone("MobileNetV2", 48, weights=str(tmp_path / "model.keras"), alpha=0.35)
    for got, want in zip(warm.get_weights(), backbone.get_weights()):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(UsageError, match="different architecture"):
        backbones.build_backbone("MobileNetV3Small", 32, weights=str(tmp_path / "model.keras"))
