"""The ingest keeps an RGB JPEG as it is exactly when TensorFlow's decoder reads it (issue 11).

The ingest workers no longer load TensorFlow: `decode._keep_jpeg` decodes with Pillow and adds the
end-of-image check that TensorFlow's reader makes. Equivalence is what matters in both directions:
a file kept that TensorFlow cannot read crashes training; a file rejected that TensorFlow reads is
a good photo lost. So damaged JPEGs of many encodings (baseline, progressive, restart markers,
4:2:0 and 4:4:4, EXIF thumbnails, trailing bytes) are decoded both ways and the verdicts compared.

    TRANSFERLINE_JPEG_FUZZ=20000 pytest tests/test_decode_jpeg_parity.py   # a longer run
"""

import io
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from benchmarks.photos import photo
from components.ingest.decode import Decoded, decode_and_normalise

CASES = int(os.environ.get("TRANSFERLINE_JPEG_FUZZ", "1500"))


def _sources() -> list:
    """Valid RGB JPEGs in the encodings cameras and tools write."""
    out = []
    for i, (size, params) in enumerate(
        [
            ((96, 72), {"quality": 85}),
            ((80, 64), {"quality": 90, "progressive": True}),
            ((64, 48), {"quality": 75, "subsampling": 0}),
            ((72, 96), {"quality": 95, "optimize": True}),
            ((64, 64), {"quality": 80, "progressive": True, "optimize": True, "subsampling": 0}),
            ((88, 56), {"quality": 70, "restart_marker_blocks": 2}),
        ]
    ):
        image = photo(i, size=size)
        buf = io.BytesIO()
        if i == 3:  # an EXIF block carrying an embedded JPEG thumbnail (its own SOS and EOI markers)
            exif = Image.Exif()
            thumb = io.BytesIO()
            photo(99, size=(40, 30)).save(thumb, format="JPEG")
            exif[0x010F] = "camera"
            params = {**params, "exif": exif.tobytes() + thumb.getvalue()}
        image.save(buf, format="JPEG", **params)
        out.append(buf.getvalue())
    return out


def _damage(rng, data: bytes) -> bytes:
    data = bytearray(data)
    how = rng.integers(6)
    if how == 0:  # flipped bytes
        for at in rng.integers(0, len(data), size=rng.integers(1, 6)):
            data[at] = rng.integers(256)
    elif how == 1:  # cut anywhere
        data = data[: rng.integers(1, len(data))]
    elif how == 2:  # cut near the end: around the last scan bytes and the EOI marker
        data = data[: len(data) - rng.integers(1, 24)]
    elif how == 3:  # bytes inserted
        at = rng.integers(len(data))
        data[at : at + 0] = rng.integers(0, 256, size=rng.integers(1, 16), dtype=np.uint8).tobytes()
    elif how == 4:  # a marker-like pair written somewhere (0xFF then anything)
        at = rng.integers(2, len(data) - 1)
        data[at : at + 2] = bytes([0xFF, int(rng.integers(256))])
    else:  # the tail replaced: a damaged EOI, or bytes appended after it
        tail = rng.integers(0, 256, size=rng.integers(1, 8), dtype=np.uint8).tobytes()
        data = data[: len(data) - rng.integers(0, 3)] + tail
    return bytes(data)


def _tensorflow_reads(data: bytes) -> bool:
    try:
        return tf.io.decode_jpeg(data, channels=0).shape[-1] == 3
    except tf.errors.OpError:
        return False


def _on_keep_path(data: bytes) -> bool:
    """Whether the ingest decides this file on the keep-as-is JPEG path (an RGB JPEG, not rotated)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return (
                image.format == "JPEG"
                and image.mode == "RGB"
                and int(image.getexif().get(0x0112, 1)) in (1, 0)
                and min(image.size) >= 16
            )
    except Exception:  # noqa: BLE001 - not openable: decided elsewhere
        return False


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_kept_exactly_when_tensorflow_reads_it():
    rng = np.random.default_rng(11)
    sources = _sources()
    for data in sources:
        assert isinstance(decode_and_normalise(data), Decoded) and _tensorflow_reads(data)
    compared, kept, mismatches = 0, 0, []
    for i in range(CASES):
        data = _damage(rng, sources[i % len(sources)])
        if not _on_keep_path(data):
            continue
        ours = decode_and_normalise(data)
        compared += 1
        kept += isinstance(ours, Decoded)
        if isinstance(ours, Decoded) != _tensorflow_reads(data):
            mismatches.append((i, type(ours).__name__, getattr(ours, "detail", "")))
    assert not mismatches, f"{len(mismatches)} of {compared} verdicts differ from TensorFlow's: {mismatches[:5]}"
    assert compared >= CASES // 3 and 0 < kept < compared, (compared, kept)  # both verdicts were exercised
