"""The pixel budget (components/common/image_limits.py): sizes read from headers agree with what the
decoders produce, in every format; bombs and many-frame animations are refused inside the exported
SavedModel, by TensorFlow's own `saved_model_cli` too, naming the image, its size and the limit."""

import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from components.common import image_limits
from schemas.artifacts import ExportedModel
from tests import export_models, hostile_images


@tf.function(input_signature=[tf.TensorSpec([], tf.string)])
def _SIZE(encoded):
    """(format index, height, width, frames, decoded pixels) with no budget to stop the frame walks."""
    return tf.stack([tf.cast(t, tf.int64) for t in image_limits.image_size(encoded, 10**12, 10**6)])


@pytest.mark.parametrize(
    "fmt, save",
    [
        ("JPEG", {}),
        ("PNG", {}),
        ("GIF", {}),
        ("BMP", {}),
        ("WEBP", {}),
        ("WEBP", {"lossless": True}),
        ("WEBP", {"exif": b"Exif\0\0x"}),
    ],
)
def test_header_sizes_match_the_decoded_image(fmt, save):
    data = hostile_images.encoded(fmt, width=53, height=31, **save)
    fmt_index, height, width, frames, pixels = _SIZE(data).numpy()
    decoded = tf.io.decode_image(data, channels=3, expand_animations=False)
    assert (height, width) == tuple(decoded.shape[:2]) == (31, 53) and frames == 1
    assert pixels >= height * width


@pytest.mark.parametrize("fmt", ["GIF", "WEBP"])
def test_animation_frames_are_counted(fmt):
    _, height, width, frames, pixels = _SIZE(hostile_images.animation(fmt, 23)).numpy()
    assert (height, width, frames) == (16, 16, 23) and pixels >= 23 * 16 * 16
    if fmt == "GIF":  # what TensorFlow decodes: every frame
        assert tf.io.decode_gif(hostile_images.animation(fmt, 23)).shape == (23, 16, 16, 3)


@pytest.mark.parametrize(
    "data, declared",
    [
        (hostile_images.png_bomb(12000, 12000), (12000, 12000)),
        (hostile_images.jpeg_bomb(65000, 60000), (60000, 65000)),
        (hostile_images.gif_bomb(30000, 20000), (20000, 30000)),
        (hostile_images.bmp_bomb(30000, 25000), (25000, 30000)),
        (hostile_images.webp_bomb(16000, 15000), (15000, 16000)),
    ],
)
def test_bombs_declare_their_size(data, declared):
    assert len(data) < 1_000_000
    assert tuple(_SIZE(data).numpy()[1:3]) == declared


def test_short_and_unknown_bytes_are_read_without_failing():
    for data in (b"", b"x", b"\0\0\0\x0cJXL \r\n\x87\n", b"\xff\x0a"):  # JPEG XL: decodable, size unreadable
        assert _SIZE(data).numpy()[0] == len(image_limits.FORMATS), data
    for data in (b"GIF8", b"RIFF\0\0\0\0WEBP", b"\x89PNG\r\n\x1a\n", b"BM"):  # truncated: no size, the decoder says why
        assert _SIZE(data).numpy()[4] == 0, data


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    return ExportedModel(export_models.tiny_export(tmp_path_factory, variants=("float32",))).saved_model_dir()


def _serve(saved_model, signature, **inputs):
    fn = tf.saved_model.load(saved_model).signatures[signature]
    return fn(**{k: tf.constant(v) for k, v in inputs.items()})


def test_the_signatures_refuse_bombs_before_decoding(saved_model):
    good = hostile_images.encoded("JPEG", 40, 48)
    bomb = hostile_images.png_bomb(30000, 30000)
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match=r"image 1: PNG of 30000 x 30000 pixels decodes to "
        r"900000000 pixels, over the model limit of 12500000 \(export.max_image_pixels\)",
    ):
        _serve(saved_model, "serving_default", images=np.array([good, bomb], dtype=object))
    example = tf.train.Example(
        features=tf.train.Features(
            feature={
                "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[hostile_images.animation("GIF", 150)]))
            }
        )
    )
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"image 0: GIF of 16 x 16 pixels has over 100 frames"):
        _serve(saved_model, "serve_tf_examples", examples=np.array([example.SerializeToString()], dtype=object))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"image 0: not a JPEG, PNG, GIF, BMP or WebP image"):
        _serve(saved_model, "serving_default", images=np.array([b"not an image"], dtype=object))
    assert _serve(saved_model, "serving_default", images=np.array([good], dtype=object))["probabilities"].shape[0] == 1


def test_saved_model_cli_refuses_the_bomb_with_the_same_message(saved_model, tmp_path):
    inputs = tmp_path / "bomb.npy"
    np.save(inputs, np.array([hostile_images.png_bomb(30000, 30000)], dtype=object), allow_pickle=True)
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "tensorflow.python.tools.saved_model_cli",
            "run",
            "--dir",
            saved_model,
            "--tag_set",
            "serve",
            "--signature_def",
            "serving_default",
            "--inputs",
            f"images={inputs}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert cli.returncode != 0
    assert (
        "image 0: PNG of 30000 x 30000 pixels decodes to 900000000 pixels, over the model limit of 12500000 "
        "(export.max_image_pixels)"
    ) in cli.stderr, cli.stderr[-3000:]


def test_the_budget_is_raised_to_the_largest_ingested_image(tmp_path):
    """Evaluation scores the test split through `serve_tf_examples`: the export's budget must take every
    image the ingest kept (here a 5,000 x 4,000 photo over the default 12.5 MP)."""
    from components.export import ExportConfig
    from components.export.exporter import _decoding_budget
    from schemas.artifacts import Examples

    (tmp_path / Examples.MANIFEST).write_text("path,height,width\na.jpg,4000,5000\nb.jpg,30,40\n")
    raised = _decoding_budget(ExportConfig(), Examples(str(tmp_path)))
    assert raised == {
        "max_image_pixels": 20_000_000,
        "max_image_frames": 100,
        "raised_to_the_largest_ingested_image": True,
    }
    kept = _decoding_budget(ExportConfig(max_image_pixels=30_000_000, max_image_frames=7), Examples(str(tmp_path)))
    assert kept == {
        "max_image_pixels": 30_000_000,
        "max_image_frames": 7,
        "raised_to_the_largest_ingested_image": False,
    }
