"""Which layers each stage trains, BatchNorm handling, schedules, config errors and device choices.

Fast unit tests on a random-weight MobileNetV2 (alpha 0.35, 32 px) assembled as a pretrained
backbone would be: no data on disk, one tiny `fit` per behaviour.
"""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from components.common.errors import EXIT_USAGE, UsageError
from components.train import StageConfig, TrainConfig, batchnorm, devices, stages
from components.train.backbones import build_backbone
from components.train.model import assemble, build_head
from components.train.trainer import class_weights_for

pytestmark = pytest.mark.slow  # seconds to minutes per test: the full tier only (pytest.ini)

SIZE = 32
CLASSES = 3


def _classifier(*, trains_bn=False, seed=0):
    """Random weights with BatchNorm statistics fitted to random images: like a pretrained backbone,
    its features are not all zero (with Keras's initial statistics they vanish)."""
    keras.utils.set_random_seed(seed)
    preprocessing, backbone = build_backbone("MobileNetV2", SIZE, "none", alpha=0.35)
    images = np.random.default_rng(seed).uniform(0, 255, (1, 16, SIZE, SIZE, 3)).astype("float32")
    batchnorm.recalibrate(backbone, preprocessing, tf.data.Dataset.from_tensor_slices(images), 1)
    model = assemble(preprocessing, backbone, build_head(CLASSES, 0.2), SIZE, backbone_trains_bn=trains_bn)
    return model, backbone, preprocessing


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (16, SIZE, SIZE, 3)).astype("float32")
    labels = keras.utils.to_categorical(rng.integers(0, CLASSES, 16), CLASSES)
    return images, labels


def _layers(backbone):
    return [layer for layer in backbone.layers if not isinstance(layer, keras.layers.InputLayer)]


def _value(variable):
    """A copy: a NumPy view of a variable would change with it."""
    return keras.ops.convert_to_numpy(variable).copy()


def _snapshot(layers):
    return {layer.name: [_value(w) for w in layer.weights] for layer in layers}


def _changed(before, layer):
    return any(not np.array_equal(a, _value(b)) for a, b in zip(before[layer.name], layer.weights))


def _train_step(model, batch):
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss=stages.make_loss(TrainConfig(), batch[1].shape[-1]))
    model.fit(*batch, epochs=1, batch_size=8, verbose=0, shuffle=False)


def test_head_stage_trains_only_the_head_and_keeps_batchnorm_in_inference_mode(batch):
    model, backbone, _ = _classifier()
    unfrozen = stages.set_trainable(
        model, backbone, StageConfig("head", 1, 1e-3, unfreeze="none"), train_batchnorm=False
    )
    assert unfrozen == []
    assert sorted(v.path for v in model.trainable_variables) == ["head_dense/bias", "head_dense/kernel"]

    # BatchNorm in inference mode: the backbone's features are the same in a training-mode call.
    features = keras.Model(model.input, model.get_layer("head_pool").output)
    np.testing.assert_allclose(features(batch[0], training=True), features(batch[0], training=False), rtol=1e-5)

    before = _snapshot(_layers(backbone))
    head_before = _value(model.get_layer("head_dense").kernel)
    _train_step(model, batch)
    assert not [layer.name for layer in _layers(backbone) if _changed(before, layer)]  # moving stats included
    assert not np.array_equal(head_before, _value(model.get_layer("head_dense").kernel))


@pytest.mark.parametrize("unfreeze", [0.3, "block_15"])
def test_finetune_unfreezes_exactly_the_requested_layers_and_never_batchnorm(batch, unfreeze):
    model, backbone, _ = _classifier()
    layers = _layers(backbone)
    if isinstance(unfreeze, float):
        start = len(layers) - math.ceil(unfreeze * len(layers))
    else:
        start = next(i for i, layer in enumerate(layers) if layer.name.startswith("block_15_"))
    expected = [layer.name for layer in layers[start:] if layer.weights and not stages.is_batchnorm(layer)]

    unfrozen = stages.set_trainable(
        model, backbone, StageConfig("finetune", 1, 1e-4, unfreeze=unfreeze), train_batchnorm=False
    )
    assert unfrozen == expected and expected
    trainable_layers = {v.path.split("/")[0] for v in model.trainable_variables}
    assert trainable_layers == set(expected) | {"head_dense"}

    before = _snapshot(layers)
    _train_step(model, batch)
    changed = {layer.name for layer in layers if _changed(before, layer)}
    batchnorms = {layer.name for layer in layers if stages.is_batchnorm(layer)}
    assert not changed & batchnorms, "a BatchNorm layer changed (scale, offset or moving statistics)"
    assert changed <= set(expected), f"frozen layers changed: {sorted(changed - set(expected))}"
    assert changed, "no unfrozen layer was updated"


def test_unknown_block_is_a_usage_error_listing_the_blocks():
    model, backbone, _ = _classifier()
    with pytest.raises(UsageError, match="block_13") as e:
        stages.set_trainable(
            model, backbone, StageConfig("finetune", 1, 1e-4, unfreeze="block_99"), train_batchnorm=False
        )
    assert e.value.exit_code == EXIT_USAGE


def test_from_scratch_batchnorm_trains_with_lower_momentum(batch):
    model, backbone, _ = _classifier(trains_bn=True)
    assert batchnorm.set_momentum(backbone, 0.9) == len(batchnorm.batchnorm_layers(backbone)) > 0
    stages.set_trainable(model, backbone, StageConfig("scratch", 1, 1e-3, unfreeze="all"), train_batchnorm=True)
    bn = batchnorm.batchnorm_layers(backbone)[0]
    assert bn.trainable and bn.momentum == 0.9
    moving_before = _value(bn.moving_mean)
    _train_step(model, batch)
    assert not np.array_equal(moving_before, _value(bn.moving_mean))


def test_precise_bn_sets_moving_statistics_to_the_average_of_batch_statistics():
    _, backbone, preprocessing = _classifier()
    rng = np.random.default_rng(1)
    batches = [rng.uniform(0, 255, (8, SIZE, SIZE, 3)).astype("float32") for _ in range(3)]
    bn = backbone.get_layer("bn_Conv1")
    bn.trainable = False
    bn.moving_mean.assign(np.full(bn.moving_mean.shape, 7.0, "float32"))  # stale statistics
    conv = keras.Model(backbone.input, backbone.get_layer("Conv1").output)
    batch_means = [np.array(conv(preprocessing(b))).mean(axis=(0, 1, 2)) for b in batches]
    batch_vars = [np.array(conv(preprocessing(b))).var(axis=(0, 1, 2)) for b in batches]

    used = batchnorm.recalibrate(backbone, preprocessing, tf.data.Dataset.from_tensor_slices(batches), 10)
    assert used == 3
    np.testing.assert_allclose(_value(bn.moving_mean), np.mean(batch_means, axis=0), rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(_value(bn.moving_variance), np.mean(batch_vars, axis=0), rtol=1e-3, atol=1e-4)
    assert not bn.trainable and bn.momentum == 0.999  # restored


def test_output_is_float32_softmax_under_mixed_precision():
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model, _, _ = _classifier()
        assert model.get_layer("head_dense").compute_dtype == "float16"
        assert model.output.dtype == "float32"
        probabilities = np.array(model(np.full((2, SIZE, SIZE, 3), 128.0, "float32")))
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    finally:
        keras.mixed_precision.set_global_policy(previous)


def test_learning_rate_warms_up_then_decays_along_a_cosine():
    schedule = stages.learning_rate(StageConfig("finetune", 4, 1e-3, warmup_epochs=1), steps_per_epoch=10)
    assert float(schedule(0)) == 0.0
    assert float(schedule(5)) == pytest.approx(5e-4)
    assert float(schedule(10)) == pytest.approx(1e-3)
    assert float(schedule(25)) == pytest.approx(5e-4, rel=1e-3)  # half way through the cosine
    assert float(schedule(40)) == pytest.approx(0.0, abs=1e-9)
    constant = stages.learning_rate(StageConfig("head", 4, 3e-3, cosine_decay=False), steps_per_epoch=10)
    assert constant == 3e-3


def test_class_weights_only_when_imbalanced():
    config = TrainConfig()
    assert class_weights_for(config, [10, 11, 12]) is None
    weights = class_weights_for(config, [30, 10, 20])
    assert weights == pytest.approx({0: 60 / 90, 1: 60 / 30, 2: 60 / 60})
    assert class_weights_for(TrainConfig(class_weights="none"), [30, 10, 20]) is None


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"stages": ()}, "train.stages is empty"),
        ({"precision": "bfloat16"}, "train.precision='bfloat16'.*auto, float32, mixed_float16"),
        ({"image_size": 8}, "train.image_size=8"),
        ({"label_smoothing": 1.5}, "train.label_smoothing"),
        ({"stages": (StageConfig("ft", 2, 1e-4, unfreeze=1.5),)}, r"unfreeze=1.5.*\(0, 1\]"),
        ({"stages": (StageConfig("ft", 0, 1e-4),)}, "epochs=0"),
        ({"stages": (StageConfig("a", 2, 1e-4), StageConfig("a", 2, 1e-4))}, "distinct name"),
        ({"weights": "none", "stages": (StageConfig("head", 2, 1e-3),)}, "freezes the backbone"),
    ],
)
def test_bad_config_is_a_usage_error_naming_the_field(changes, field):
    with pytest.raises(UsageError, match=field) as e:
        TrainConfig(**changes).validate()
    assert e.value.exit_code == EXIT_USAGE


def test_default_stages_depend_on_pretrained_weights():
    pretrained = TrainConfig(weights="imagenet").effective_stages()
    assert [s.name for s in pretrained] == ["head", "finetune"]
    assert pretrained[0].freezes_backbone and not pretrained[0].augment
    assert [s.name for s in TrainConfig(weights="none").effective_stages()] == ["scratch"]


def test_precision_auto_uses_mixed_float16_only_on_capable_gpus():
    assert devices.choose_precision("auto", []) == "float32"
    assert devices.choose_precision("auto", [(7, 0)]) == "mixed_float16"
    assert devices.choose_precision("auto", [(8, 6), (9, 0)]) == "mixed_float16"
    assert devices.choose_precision("auto", [(6, 1)]) == "float32"
    assert devices.choose_precision("auto", [(8, 0), (6, 1)]) == "float32"
    assert devices.choose_precision("float32", [(9, 0)]) == "float32"
    assert devices.choose_precision("mixed_float16", []) == "mixed_float16"


def test_strategy_follows_gpus_and_tf_config():
    cluster = '{"cluster": {"worker": ["host1:2222", "host2:2222"]}, "task": {"type": "worker", "index": 0}}'
    assert devices.choose_strategy(0, None) == "default"
    assert devices.choose_strategy(1, None) == "default"
    assert devices.choose_strategy(2, None) == "mirrored"
    for gpus in (0, 4):  # Keras 3's fit fails under MultiWorkerMirroredStrategy: refused, saying why
        with pytest.raises(UsageError, match=r"TF_CONFIG describes a cluster.*keras-team/keras#20585.*Unset TF_CONFIG"):
            devices.choose_strategy(gpus, cluster)
    assert devices.choose_strategy(2, '{"task": {}}') == "mirrored"  # no cluster in it: one machine
    with pytest.raises(UsageError, match="TF_CONFIG"):
        devices.choose_strategy(0, "{not json")


def test_preflight_refuses_a_tf_config_cluster_before_building_anything(monkeypatch):
    from components.train import preflight
    from components.train.config import TrainConfig

    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 0}}')
    monkeypatch.setattr(preflight, "build_backbone", lambda *a, **k: pytest.fail("built a backbone"))
    with pytest.raises(UsageError, match="multi-worker training does not work with this Keras"):
        preflight.check(TrainConfig())
