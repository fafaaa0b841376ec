"""Small trained models in the train-artifact format, for the export/evaluate/push tests.

Until (and besides) the trainer, these write exactly what `components.train.run` hands on
(schemas/ARTIFACTS.md, "train -> export"): model.keras taking raw RGB 0-255 with its
preprocessing inside, model_info.json and labels.txt. Two kinds:
  - a tiny CNN on the synthetic ingest images (seconds to train; `epochs=0` gives a useless one),
  - the shared pretrained MobileNetV2 (96 px) with a dense head fitted on the sign-language photos.
"""
import io
import json
import os
import pathlib

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

from components.common import ingested
from components.common.model_runners import preprocess
from tests.ingest_format import ImageRecord, write_ingest_dir


def write_train_dir(train_dir, model: keras.Model, labels, image_size, backbone: str) -> str:
    train_dir = os.fspath(train_dir)
    os.makedirs(train_dir)
    model.save(os.path.join(train_dir, "model.keras"))
    with open(os.path.join(train_dir, "labels.txt"), "w") as f:
        f.write("".join(f"{name}\n" for name in labels))
    with open(os.path.join(train_dir, "model_info.json"), "w") as f:
        json.dump({"image_size": list(image_size), "backbone": backbone, "labels": list(labels),
                   "num_classes": len(labels)}, f)
    return train_dir


def tiny_cnn(num_classes: int, image_size=(32, 32), seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((*image_size, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs)


def train_tiny(train_dir, ingest_dir, epochs: int, image_size=(32, 32), seed: int = 0, learning_rate=0.05) -> str:
    """A tiny CNN fitted on the ingest dir's train split for `epochs` (0: untrained, near chance)."""
    labels = ingested.read_labels(os.path.join(ingest_dir, "labels.txt"))
    _, images, y = ingested.read_split(ingest_dir, "train")
    model = tiny_cnn(len(labels), image_size, seed)
    if epochs:
        model.compile(keras.optimizers.Adam(learning_rate), "sparse_categorical_crossentropy")
        model.fit(preprocess(images, image_size), y, epochs=epochs, batch_size=16, verbose=0)
    return write_train_dir(train_dir, model, labels, image_size, "tiny_cnn")


def sign_digits_ingest_dir(ingest_dir, sign_digits_dir: pathlib.Path, train_per_class=20, test_per_class=6) -> str:
    """An ingest-format dir of real sign-language photos (the 100x100 ones; first files per class)."""
    labels = sorted(p.name for p in sign_digits_dir.iterdir() if p.is_dir())
    records = []
    for label, name in enumerate(labels):
        files = sorted((sign_digits_dir / name).iterdir())
        kept = [f for f in files if Image.open(f).size == (100, 100)][:train_per_class + test_per_class]
        for i, path in enumerate(kept):
            split = "train" if i < train_per_class else "test"
            records.append(ImageRecord(split, label, path.read_bytes(), "jpeg", f"{name}/{path.name}"))
    return write_ingest_dir(ingest_dir, records, labels, tfds_metadata=False)


def train_sign_digits(train_dir, ingest_dir, weights_dir: pathlib.Path, epochs: int = 30) -> str:
    """The shared MobileNetV2 (frozen, 96 px) + pooling + dense head fitted on the train split."""
    labels = ingested.read_labels(os.path.join(ingest_dir, "labels.txt"))
    _, images, y = ingested.read_split(ingest_dir, "train")
    backbone = keras.models.load_model(weights_dir / "mobilenetv2_0.35_96_cifar6_notop.keras", compile=False)
    backbone.trainable = False
    keras.utils.set_random_seed(0)
    head = keras.Sequential([keras.Input((3, 3, 1280)), keras.layers.GlobalAveragePooling2D(),
                             keras.layers.Dense(len(labels), activation="softmax")])
    pixels = preprocess(images, (96, 96))
    features = backbone.predict(keras.applications.mobilenet_v2.preprocess_input(pixels.copy()), verbose=0)
    head.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    head.fit(features, y, epochs=epochs, batch_size=32, verbose=0)
    inputs = keras.Input((96, 96, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)
    outputs = head(backbone(x, training=False))
    return write_train_dir(train_dir, keras.Model(inputs, outputs), labels, (96, 96), "mobilenetv2_0.35_cifar6")
