"""The built-in demo dataset: deterministic, laid out as documented, its broken files broken in
the documented way, and learnable by a small CNN from scratch (the demo runs offline)."""

import hashlib
import io
import os

import numpy as np
import pytest
from PIL import Image

from components.common.errors import UsageError
from components.ingest import decode, demo


def _tree_digest(root: str) -> dict:
    digests = {}
    for folder, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                digests[os.path.relpath(path, root)] = hashlib.sha256(f.read()).hexdigest()
    return digests


@pytest.fixture(scope="module")
def files():
    return demo.demo_files(seed=0)


def test_same_bytes_on_every_call(tmp_path, files):
    """`files` came from an earlier call; the folder written now must hold exactly those bytes."""
    written = demo.generate_demo(str(tmp_path / "demo"))
    assert written == str(tmp_path / "demo")
    assert _tree_digest(written) == {rel: hashlib.sha256(data).hexdigest() for rel, data in files.items()}
    assert demo.demo_files(seed=1)["circles/circles_0000.jpg"] != files["circles/circles_0000.jpg"]


def test_layout(files):
    for label in demo.CLASSES:
        regular = [rel for rel in files if rel.startswith(f"{label}/{label}_")]
        assert len(regular) == demo.IMAGES_PER_CLASS
    assert set(demo.BROKEN_FILES) <= set(files)
    assert "README.txt" in files and b"truncated" in files["README.txt"]
    with Image.open(io.BytesIO(files["circles/circles_0000.jpg"])) as image:
        assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (demo.SIZE, demo.SIZE))


def test_broken_files_fail_as_documented(files):
    """Each odd file does what BROKEN_FILES (and the README the user reads) says."""
    for rel, what in demo.BROKEN_FILES.items():
        if what.startswith("ignored"):
            continue
        outcome, reason = what.split(":")[0], what.split(":")[1].split()[0]
        result = decode.decode_and_normalise(files[rel])
        if reason in (decode.DUPLICATE, decode.LABEL_CONFLICT):  # decided across files, by the pipeline
            assert isinstance(result, decode.Decoded)
            twins = [other for other, data in files.items() if data == files[rel] and other != rel]
            assert twins, f"{rel} has no twin"
            assert (reason == decode.DUPLICATE) == all(t.split("/")[0] == rel.split("/")[0] for t in twins)
        elif outcome == "rejected":
            assert isinstance(result, decode.Rejected) and result.reason == reason, (rel, result)
        else:
            assert isinstance(result, decode.Decoded) and result.normalised, (rel, result)


def test_existing_folder_is_left_alone(tmp_path):
    dest = tmp_path / "mine"
    dest.mkdir()
    (dest / "keep.txt").write_text("user data")
    with pytest.raises(UsageError, match="already exists"):
        demo.generate_demo(str(dest))
    assert os.listdir(dest) == ["keep.txt"] and os.listdir(tmp_path) == ["mine"]


def test_a_small_cnn_from_scratch_separates_the_classes(files):
    """Three conv layers, 3 epochs, no pretrained weights: the offline demo must be learnable."""
    import keras

    def arrays(indices):
        xs, ys = [], []
        for c, label in enumerate(demo.CLASSES):
            for i in indices:
                with Image.open(io.BytesIO(files[f"{label}/{label}_{i:04d}.jpg"])) as image:
                    xs.append(np.asarray(image.resize((32, 32)), np.float32))
                ys.append(c)
        return np.stack(xs), np.array(ys)

    x_train, y_train = arrays(range(0, 120))
    x_val, y_val = arrays(range(120, demo.IMAGES_PER_CLASS))
    keras.utils.set_random_seed(0)
    layers = keras.layers
    model = keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            layers.Rescaling(1 / 127.5, offset=-1),
            layers.Conv2D(16, 3, activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(32, 3, activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(32, 3, activation="relu"),
            layers.GlobalAveragePooling2D(),
            layers.Dense(len(demo.CLASSES), activation="softmax"),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=3, batch_size=32, verbose=0)
    _, accuracy = model.evaluate(x_val, y_val, verbose=0)
    assert accuracy >= 0.9, f"validation accuracy {accuracy:.3f} after 3 epochs"
