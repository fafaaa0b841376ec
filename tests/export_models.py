"""Small trained models in the train-artifact format, for the export/evaluate/push tests.

Until (and besides) the trainer, these write exactly what `components.train.run` hands on
(schemas/ARTIFACTS.md, "train -> export"): model.keras taking raw RGB 0-255 with its
preprocessing inside, model_info.json and labels.txt. Two kinds:
  - a tiny CNN on the synthetic ingest images (seconds to train; `epochs=0` gives a useless one),
  - the shared pretrained MobileNetV2 (96 px) with a dense head fitted on the sign-language photos.
"""

import json
import os
import pathlib

import keras
from PIL import Image

import components.export
from components.common.image_ops import preprocess
from components.common.publish import write_json
from schemas.artifacts import Examples
from schemas.split_reader import read_split
from tests.ingest_format import ImageRecord, write_ingest_dir, write_synthetic_ingest_dir

# Artifacts built once per test session and shared by the export/evaluate/push/CLI test modules
# (conftest.py is not ours to extend); keyed by name, under pytest's session temporary directory.
_SESSION: dict = {}


def write_train_dir(train_dir, model: keras.Model, labels, image_size, backbone: str) -> str:
    train_dir = os.fspath(train_dir)
    os.makedirs(train_dir)
    model.save(os.path.join(train_dir, "model.keras"))
    with open(os.path.join(train_dir, "labels.txt"), "w") as f:
        f.write("".join(f"{name}\n" for name in labels))
    with open(os.path.join(train_dir, "model_info.json"), "w") as f:
        json.dump(
            {"image_size": list(image_size), "backbone": backbone, "labels": list(labels), "num_classes": len(labels)},
            f,
        )
    return train_dir


def tiny_cnn(num_classes: int, image_size=(32, 32), seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((*image_size, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D(name="head_pool")(x)
    logits = keras.layers.Dense(num_classes, name="head_dense")(x)  # the trainer's head layout (train/model.py)
    return keras.Model(inputs, keras.layers.Activation("softmax", name="probabilities")(logits))


def train_tiny(train_dir, ingest_dir, epochs: int, image_size=(32, 32), seed: int = 0, learning_rate=0.05) -> str:
    """A tiny CNN fitted on the ingest dir's train split for `epochs` (0: untrained, near chance)."""
    labels = Examples(ingest_dir).labels()
    _, images, y = read_split(Examples(ingest_dir), "train")
    model = tiny_cnn(len(labels), image_size, seed)
    if epochs:
        model.compile(keras.optimizers.Adam(learning_rate), "sparse_categorical_crossentropy")
        model.fit(preprocess(images, image_size), y, epochs=epochs, batch_size=16, verbose=0)
    return write_train_dir(train_dir, model, labels, image_size, "tiny_cnn")


def sign_digits_ingest_dir(
    ingest_dir, sign_digits_dir: pathlib.Path, train_per_class=20, test_per_class=6, val_per_class=6
) -> str:
    """An ingest-format dir of real sign-language photos (the 100x100 ones; first files per class):
    train, then test, then val images of each class."""
    labels = sorted(p.name for p in sign_digits_dir.iterdir() if p.is_dir())
    records = []
    for label, name in enumerate(labels):
        files = sorted((sign_digits_dir / name).iterdir())
        kept = [f for f in files if Image.open(f).size == (100, 100)][
            : train_per_class + test_per_class + val_per_class
        ]
        for i, path in enumerate(kept):
            split = "train" if i < train_per_class else "test" if i < train_per_class + test_per_class else "val"
            records.append(ImageRecord(split, label, path.read_bytes(), "jpeg", f"{name}/{path.name}"))
    return write_ingest_dir(ingest_dir, records, labels, tfds_metadata=False)


def train_sign_digits(train_dir, ingest_dir, weights_dir: pathlib.Path, epochs: int = 30) -> str:
    """The shared MobileNetV2 (frozen, 96 px) + pooling + dense head fitted on the train split."""
    labels = Examples(ingest_dir).labels()
    _, images, y = read_split(Examples(ingest_dir), "train")
    backbone = keras.models.load_model(weights_dir / "mobilenetv2_0.35_96_cifar6_notop.keras", compile=False)
    backbone.trainable = False
    keras.utils.set_random_seed(0)
    # the trainer's head layout (train/model.py), layers shared by the feature model and the full one
    pool = keras.layers.GlobalAveragePooling2D(name="head_pool")
    dense = keras.layers.Dense(len(labels), name="head_dense")
    softmax = keras.layers.Activation("softmax", name="probabilities")
    feature_input = keras.Input((3, 3, 1280))
    head = keras.Model(feature_input, softmax(dense(pool(feature_input))))
    pixels = preprocess(images, (96, 96))
    features = backbone.predict(keras.applications.mobilenet_v2.preprocess_input(pixels.copy()), verbose=0)
    head.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    head.fit(features, y, epochs=epochs, batch_size=32, verbose=0)
    inputs = keras.Input((96, 96, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)
    outputs = softmax(dense(pool(backbone(x, training=False))))
    return write_train_dir(train_dir, keras.Model(inputs, outputs), labels, (96, 96), "mobilenetv2_0.35_cifar6")


def _once(key: str, build):
    if key not in _SESSION:
        _SESSION[key] = build()
    return _SESSION[key]


def tiny_ingest(tmp_path_factory) -> str:
    """3 synthetic classes (cat, dog, fish), 12 train, 34 val and 8 test images per class, 40x48 JPEGs:
    102 val images, enough to fit a temperature and an abstention threshold on (MIN_CALIBRATION_EXAMPLES)."""
    return _once(
        "tiny_ingest",
        lambda: write_synthetic_ingest_dir(
            tmp_path_factory.mktemp("tiny_ingest") / "ingest",
            per_split={"train": 12, "val": 34, "test": 8},
            tfds_metadata=False,
        ),
    )


def tiny_export(
    tmp_path_factory,
    epochs: int = 15,
    variants=("float32", "float16", "dynamic_range", "int8"),
    learning_rate: float = 0.05,
) -> str:
    """The export dir of a tiny CNN trained for `epochs` on `tiny_ingest` (0 epochs: an untrained model)."""

    def build():
        root = tmp_path_factory.mktemp(f"tiny_e{epochs}")
        ingest = tiny_ingest(tmp_path_factory)
        train = train_tiny(root / "train", ingest, epochs, learning_rate=learning_rate)
        config = components.export.ExportConfig(
            formats=tuple(f"tflite_{v}" for v in variants) + ("onnx",), representative_examples=24
        )
        return components.export.run(config, train, ingest, str(root / "export")).output_dir

    return _once(f"tiny_export_{epochs}_{learning_rate}_{variants}", build)


def sign_digits_artifacts(tmp_path_factory, sign_digits_dir, shared_weights_dir) -> dict:
    """Real photos: ingest (20 train / 6 test per class), pretrained-backbone model, export (TFLite float32
    and int8, ONNX)."""

    def build():
        root = tmp_path_factory.mktemp("sign_digits")
        ingest = sign_digits_ingest_dir(root / "ingest", sign_digits_dir)
        train = train_sign_digits(root / "train", ingest, shared_weights_dir)
        config = components.export.ExportConfig(
            formats=("tflite_float32", "tflite_int8", "onnx"), representative_examples=50
        )
        export = components.export.run(config, train, ingest, str(root / "export")).output_dir
        return {"ingest": ingest, "train": train, "export": export}

    return _once("sign_digits", build)


def default_sign_digits_training(tmp_path_factory, ingest_dir, weights_dir: pathlib.Path):
    """(TrainResult, train dir): the whole ingested sign-language folder trained with the DEFAULT
    TrainConfig and the shared backbone, once per test session (the transfer and trust tests share it)."""

    def build():
        from components.train import TrainConfig, run

        out = tmp_path_factory.mktemp("transfer") / "train"
        result = run(
            TrainConfig(weights=str(weights_dir / "mobilenetv2_0.35_96_cifar6_notop.keras")), str(ingest_dir), str(out)
        )
        print("\n" + result.summary())
        return result, out

    return _once("default_sign_digits_training", build)


def blessing_dir(path, blessed: bool, failed=()) -> str:
    """An evaluate output as `components.evaluate` writes it (for push tests that need no TFMA run)."""
    path = os.fspath(path)
    os.makedirs(path)
    write_json(os.path.join(path, "blessing.json"), {"blessed": blessed, "checks": [], "failed": list(failed)})
    open(os.path.join(path, "BLESSED" if blessed else "NOT_BLESSED"), "w").close()
    return path
