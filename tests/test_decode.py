"""Unit tests of `components.ingest.decode`: every reject reason and every normalisation case.

What a user relies on: a bad file is rejected with the right reason (never kept, never a crash),
and every kept file is stored as bytes that TensorFlow decodes to 8-bit RGB of the right size and
orientation, byte for byte the original when nothing had to change.
"""

import io
import pathlib
import struct
import zlib

import image_fixtures as fx
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from components.ingest import decode
from components.ingest.decode import Decoded, Rejected, decode_and_normalise


def _tf_decode(data: bytes) -> np.ndarray:
    """Decode as the trainer does, but without forcing 3 channels: the stored image must be RGB."""
    return tf.io.decode_image(data, expand_animations=False).numpy()


@pytest.mark.parametrize("case", [c for c, spec in fx.REJECT_CASES.items() if spec.make is not None])
def test_reject_reason(case):
    spec = fx.REJECT_CASES[case]
    result = decode_and_normalise(spec.make(), min_side=16)
    assert isinstance(result, Rejected), f"{case} was kept"
    assert result.reason == spec.reason, result.detail
    assert result.reason in decode.REJECT_REASONS
    assert len(result.detail) > 20  # says what is wrong, not just the code


def test_truncated_jpeg_has_an_intact_header():
    """The truncated fixture is the hard kind: it opens, so only the full decode rejects it."""
    data = fx.truncated_jpeg_bytes()
    with Image.open(io.BytesIO(data)) as image:
        assert image.size == (64, 64)
    assert decode_and_normalise(data).reason == decode.TRUNCATED


def test_jpeg_with_trailing_bytes_is_kept_as_is():
    """Cameras pad files or append data after the end marker: still a whole image."""
    data = fx.rgb_jpeg_bytes() + b"\x00" * 16
    result = decode_and_normalise(data)
    assert result.data is data and not result.changes


def test_damaged_header_is_truncated_not_not_image():
    data = fx.rgb_jpeg_bytes()[:40]
    assert decode_and_normalise(data).reason == decode.TRUNCATED
    assert decode_and_normalise(b"\xff\xd8\xff\xe0garbage" * 3).reason == decode.TRUNCATED


def test_too_large_is_decided_from_the_header_before_decoding():
    """A 200-byte PNG claiming 5000x5000: below Pillow's own limit, above ours; it has no pixel
    data, so it could only be called too_large (not truncated) if no decode was attempted."""
    data = fx.huge_header_png_bytes(5000, 5000)
    result = decode_and_normalise(data, max_pixels=1_000_000)
    assert result.reason == decode.TOO_LARGE
    assert "25,000,000" in result.detail and "max_pixels=1,000,000" in result.detail


def test_too_large_real_image_above_configured_max():
    assert decode_and_normalise(fx.big_png_bytes(300, 200), max_pixels=50_000).reason == decode.TOO_LARGE
    assert isinstance(decode_and_normalise(fx.big_png_bytes(300, 200), max_pixels=60_000), Decoded)


def test_min_side_is_configurable():
    data = fx.rgb_png_bytes(48, 20)
    assert decode_and_normalise(data, min_side=21).reason == decode.TOO_SMALL
    assert isinstance(decode_and_normalise(data, min_side=20), Decoded)


def test_reason_codes_are_one_documented_list():
    from schemas import reasons

    assert decode.REJECT_REASONS is reasons.REJECT_REASONS, "the decoder names the schema's reasons, not copies"
    assert len(set(reasons.REJECT_REASONS)) == len(reasons.REJECT_REASONS)
    readme = (pathlib.Path(__file__).resolve().parents[1] / "docs" / "data.md").read_text()
    undocumented = [r for r in reasons.REJECT_REASONS if f"`{r}`" not in readme]
    assert not undocumented, f"reject reasons missing from docs/data.md: {undocumented}"


def test_jpeg_that_pillow_keeps_but_tensorflow_cannot_read_is_rejected():
    data = fx.jpeg_without_end_marker_bytes()
    with Image.open(io.BytesIO(data)) as image:
        image.load()  # Pillow alone would keep it
    with pytest.raises(tf.errors.InvalidArgumentError):
        tf.io.decode_jpeg(data)
    assert decode_and_normalise(data).reason == decode.TRUNCATED


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow warns about the damage it meets
def test_damaged_files_never_crash_and_every_kept_one_decodes_in_tensorflow():
    """Seeded random damage (byte flips, cuts, insertions) to every fixture: decode never raises,
    and whatever it keeps, TensorFlow decodes to 8-bit RGB of the reported size."""
    rng = np.random.default_rng(0)
    sources = [spec.make() for spec in fx.NORMALISE_CASES.values()]
    outcomes = set()
    for _ in range(400):
        data = bytearray(sources[rng.integers(len(sources))])
        how = rng.integers(3)
        if how == 0:
            for at in rng.integers(0, len(data), size=rng.integers(1, 6)):
                data[at] = rng.integers(256)
        elif how == 1:
            data = data[: rng.integers(1, len(data))]
        else:
            at = rng.integers(len(data))
            data[at:at] = rng.integers(0, 256, size=rng.integers(1, 16), dtype=np.uint8).tobytes()
        result = decode_and_normalise(bytes(data))
        outcomes.add(type(result).__name__)
        if isinstance(result, Decoded):
            pixels = _tf_decode(result.data)
            assert pixels.dtype == np.uint8 and pixels.shape == (result.height, result.width, 3)
    assert outcomes == {"Decoded", "Rejected"}


@pytest.mark.parametrize("case", sorted(fx.NORMALISE_CASES))
def test_normalised_to_8bit_rgb(case):
    spec = fx.NORMALISE_CASES[case]
    data = spec.make()
    result = decode_and_normalise(data)
    assert isinstance(result, Decoded), result
    assert result.format == spec.stored_format
    assert (result.height, result.width) == spec.size
    assert (result.data is data) == spec.original
    assert result.normalised == (not spec.original)
    pixels = _tf_decode(result.data)
    assert pixels.dtype == np.uint8 and pixels.shape == spec.size + (3,)
    for (row, col), rgb in spec.expect.items():
        diff = np.abs(pixels[row, col].astype(int) - np.array(rgb))
        assert diff.max() <= spec.tolerance, f"pixel {(row, col)} is {pixels[row, col]}, expected {rgb}"


def test_exif_orientation_is_applied_and_the_tag_dropped():
    result = decode_and_normalise(fx.exif_rotated_jpeg_bytes())
    assert result.changes == (decode.CHANGE_ORIENTATION,)
    with Image.open(io.BytesIO(result.data)) as stored:
        assert stored.getexif().get(0x0112) is None
        assert stored.size == (32, 48)  # (width, height): portrait, as a viewer shows it


def test_animated_gif_keeps_the_first_frame_and_says_so():
    result = decode_and_normalise(fx.animated_gif_bytes())
    assert decode.CHANGE_ANIMATION in result.changes
    assert "first of 3 frames" in result.detail


def test_sixteen_bit_rgb_png_is_stored_as_eight_bit():
    pixels = np.full((20, 30, 3), 0x8080, np.uint16)
    raw = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in pixels)
    header = struct.pack(">IIBBBBB", 30, 20, 16, 2, 0, 0, 0)
    data = (
        b"\x89PNG\r\n\x1a\n"
        + fx._png_chunk(b"IHDR", header)
        + fx._png_chunk(b"IDAT", zlib.compress(raw))
        + fx._png_chunk(b"IEND", b"")
    )
    result = decode_and_normalise(data)
    assert result.changes == (decode.CHANGE_BIT_DEPTH,)
    assert result.data[24] == 8  # IHDR bit depth of the stored PNG
    assert (_tf_decode(result.data) == 128).all()


def test_rgb_png_with_a_transparent_colour_is_flattened_on_white():
    out = io.BytesIO()
    Image.new("RGB", (20, 20), (0, 0, 0)).save(out, format="PNG", transparency=(0, 0, 0))
    result = decode_and_normalise(out.getvalue())
    assert result.changes == (decode.CHANGE_ALPHA,)
    assert (_tf_decode(result.data) == 255).all()


def test_fully_opaque_alpha_is_dropped():
    out = io.BytesIO()
    Image.new("RGBA", (20, 20), (10, 20, 30, 255)).save(out, format="PNG")
    result = decode_and_normalise(out.getvalue())
    assert "alpha dropped" in result.detail
    assert (_tf_decode(result.data) == (10, 20, 30)).all()


def test_camera_mpo_is_kept_as_jpeg():
    out = io.BytesIO()
    first, second = fx.pattern(48, 32), fx.pattern(48, 32, seed=1)
    first.save(out, format="MPO", save_all=True, append_images=[second])
    data = out.getvalue()
    result = decode_and_normalise(data)
    assert result.data is data and result.format == "jpeg" and not result.changes
    assert _tf_decode(data).shape == (32, 48, 3)


def test_max_side_downsizes_keeping_aspect_ratio():
    data = fx.rgb_jpeg_bytes(300, 200)
    result = decode_and_normalise(data, max_side=100)
    assert (result.width, result.height) == (100, 67)
    assert result.format == "jpeg" and result.changes == (decode.CHANGE_RESIZED,)
    assert "300x200 -> 100x67" in result.detail
    assert _tf_decode(result.data).shape == (67, 100, 3)
    assert decode_and_normalise(data, max_side=300).data is data  # not above max_side: untouched


def test_re_encoding_is_deterministic():
    data = fx.cmyk_jpeg_bytes()
    assert decode_and_normalise(data).data == decode_and_normalise(data).data
