"""Tiny image files for tests: one per reject reason and per normalisation case, and a class tree.

Each `*_bytes()` function returns the bytes of one small file, made deterministically here
(nothing is downloaded or checked in). `REJECT_CASES` and `NORMALISE_CASES` name every case with
its file name and what the ingest must do with it; `build_fixture_tree()` writes them, plus
ordinary images, into a class-per-folder tree and returns what is expected of each file.

The "unreadable" case is a dangling symlink named like an image: tests run as root (here and in
CI), and root reads a chmod-000 file anyway, while a dangling link fails to open for everyone.
"""

import dataclasses
import io
import os
import struct
import zlib
from typing import Callable, Dict, Optional, Tuple

import numpy as np
from PIL import Image

RED = (255, 0, 0)
GREEN = (0, 255, 0)
BLUE = (0, 0, 255)
WHITE = (255, 255, 255)


def _encode(image: Image.Image, fmt: str, **params) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **params)
    return out.getvalue()


def pattern(width: int = 48, height: int = 32, seed: int = 0) -> Image.Image:
    """An RGB image whose orientation can be told apart: red top-left block on a smooth gradient.

    The block covers the top-left quarter (rounded down); the rest is a blue-green gradient whose
    values never come near pure red, so a test finds where the red corner ended up.
    """
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack(
        [np.full_like(x, 20), 60 + 150 * x // max(1, width - 1), 60 + 150 * y // max(1, height - 1)], axis=-1
    ).astype(np.int16)
    pixels += rng.integers(-10, 11, size=pixels.shape, dtype=np.int16)
    pixels = np.clip(pixels, 0, 255).astype(np.uint8)
    pixels[: height // 4 or 1, : width // 4 or 1] = RED
    return Image.fromarray(pixels)


def rgb_jpeg_bytes(width: int = 48, height: int = 32, seed: int = 0) -> bytes:
    """An ordinary 8-bit RGB JPEG: kept byte for byte."""
    return _encode(pattern(width, height, seed), "JPEG", quality=90)


def rgb_png_bytes(width: int = 48, height: int = 32, seed: int = 0) -> bytes:
    """An ordinary 8-bit RGB PNG: kept byte for byte."""
    return _encode(pattern(width, height, seed), "PNG")


def truncated_jpeg_bytes() -> bytes:
    """A JPEG cut at 60% of its length: its header is intact, so only a full decode catches it."""
    data = rgb_jpeg_bytes(64, 64)
    return data[: len(data) * 6 // 10]


def truncated_png_bytes() -> bytes:
    """A PNG cut at 60% of its length (inside the image data)."""
    data = rgb_png_bytes(64, 64)
    return data[: len(data) * 6 // 10]


def jpeg_without_end_marker_bytes() -> bytes:
    """A JPEG whose end-of-image marker is damaged (FFD9 -> FFD1): Pillow decodes every row of it,
    TensorFlow's decoder fails on it (it reads on to the marker), so training would crash on it."""
    data = rgb_jpeg_bytes(48, 32)
    return data[:-1] + b"\xd1"


def bad_crc_png_bytes() -> bytes:
    """A PNG whose IDAT checksum is wrong: Pillow decodes it, libpng (TensorFlow) refuses it."""
    data = bytearray(rgb_png_bytes(32, 32))
    idat = data.index(b"IDAT")
    length = struct.unpack(">I", data[idat - 4 : idat])[0]
    crc_at = idat + 4 + length
    data[crc_at : crc_at + 4] = bytes(b ^ 0xFF for b in data[crc_at : crc_at + 4])
    return bytes(data)


def empty_bytes() -> bytes:
    return b""


def text_bytes() -> bytes:
    """A text file (named like a JPEG in the fixtures)."""
    return b"This is a text file that somebody saved with a .jpg extension.\n"


def tga_bytes() -> bytes:
    """A real image in a format Pillow decodes but the ingest does not accept (Targa)."""
    return _encode(pattern(32, 32), "TGA")


def heic_like_bytes() -> bytes:
    """The start of an HEIC file (an iPhone photo): a format Pillow cannot decode here."""
    return struct.pack(">I", 24) + b"ftypheic" + b"\x00\x00\x00\x00mif1heic" + b"\x00" * 64


def too_small_bytes() -> bytes:
    """An 8x8 PNG: below the default min_side of 16."""
    return rgb_png_bytes(8, 8)


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def huge_header_png_bytes(width: int = 100_000, height: int = 100_000) -> bytes:
    """A 200-byte PNG whose header claims 10 billion pixels (a decompression bomb's shape)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + _png_chunk(b"IEND", b"")
    )


def big_png_bytes(width: int = 300, height: int = 200) -> bytes:
    """A real image above a small configured max_pixels (e.g. 50,000)."""
    return rgb_png_bytes(width, height, seed=7)


def cmyk_jpeg_bytes() -> bytes:
    """A CMYK JPEG (print workflows): TensorFlow cannot decode it; normalised to RGB."""
    return _encode(pattern(48, 32).convert("CMYK"), "JPEG", quality=95)


def grayscale_jpeg_bytes() -> bytes:
    return _encode(pattern(48, 32).convert("L"), "JPEG", quality=95)


def rgba_png_bytes() -> bytes:
    """An RGBA PNG whose right half is fully transparent (black underneath): becomes white."""
    image = pattern(48, 32).convert("RGBA")
    alpha = np.full((32, 48), 255, np.uint8)
    alpha[:, 24:] = 0
    pixels = np.asarray(image).copy()
    pixels[:, 24:, :3] = 0
    pixels[..., 3] = alpha
    return _encode(Image.fromarray(pixels), "PNG")


def palette_transparent_png_bytes() -> bytes:
    """A P-mode PNG with a transparent palette index covering its right half."""
    image = Image.new("P", (48, 32), 1)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * (256 * 3 - 6))
    for x in range(24, 48):
        for y in range(32):
            image.putpixel((x, y), 0)
    return _encode(image, "PNG", transparency=0)


def la_png_bytes() -> bytes:
    """A grayscale+alpha PNG: left half gray 100 opaque, right half transparent."""
    pixels = np.zeros((32, 48, 2), np.uint8)
    pixels[:, :24] = (100, 255)
    pixels[:, 24:] = (0, 0)
    return _encode(Image.fromarray(pixels), "PNG")


def gray16_png_bytes() -> bytes:
    """A 16-bit grayscale PNG: left half 65535 (white), right half 32896 (-> 128 in 8 bits)."""
    pixels = np.full((32, 48), 65535, np.uint16)
    pixels[:, 24:] = 32896
    return _encode(Image.fromarray(pixels), "PNG")


def exif_rotated_jpeg_bytes() -> bytes:
    """A 48x32 (w x h) JPEG tagged EXIF orientation 6: shown (and stored) as 32x48, red corner top-right."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return _encode(pattern(48, 32), "JPEG", quality=95, exif=exif.tobytes())


def animated_gif_bytes() -> bytes:
    """A 3-frame GIF: red, green, blue. The first frame (red) is kept."""
    frames = [Image.new("RGB", (40, 40), colour) for colour in (RED, GREEN, BLUE)]
    return _encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def bmp_bytes() -> bytes:
    return _encode(pattern(48, 32), "BMP")


def webp_bytes() -> bytes:
    return _encode(pattern(48, 32), "WEBP", lossless=True)


def tiff_bytes() -> bytes:
    return _encode(pattern(48, 32), "TIFF")


@dataclasses.dataclass(frozen=True)
class RejectCase:
    """A file the ingest must reject with `reason`."""

    file_name: str
    make: Optional[Callable[[], bytes]]  # None: a dangling symlink (unreadable)
    reason: str


@dataclasses.dataclass(frozen=True)
class NormaliseCase:
    """A file the ingest must keep, stored as `stored_format` decoding to 8-bit RGB of `size` (h, w).

    `expect` maps (row, column) -> RGB of the decoded stored image, each within `tolerance`.
    `original` says the stored bytes are the file's own bytes.
    """

    file_name: str
    make: Callable[[], bytes]
    stored_format: str
    size: Tuple[int, int]
    expect: Dict[Tuple[int, int], Tuple[int, int, int]] = dataclasses.field(default_factory=dict)
    tolerance: int = 12
    original: bool = False


REJECT_CASES = {
    "empty": RejectCase("empty.jpg", empty_bytes, "empty"),
    "text_named_jpg": RejectCase("notes.jpg", text_bytes, "not_image"),
    "truncated_jpeg": RejectCase("truncated.jpg", truncated_jpeg_bytes, "truncated"),
    "truncated_png": RejectCase("truncated.png", truncated_png_bytes, "truncated"),
    "bad_crc_png": RejectCase("bad_crc.png", bad_crc_png_bytes, "truncated"),
    "jpeg_without_end_marker": RejectCase("no_end_marker.jpg", jpeg_without_end_marker_bytes, "truncated"),
    "tga": RejectCase("targa.tga", tga_bytes, "unsupported_format"),
    "heic": RejectCase("iphone.heic", heic_like_bytes, "unsupported_format"),
    "too_small": RejectCase("tiny.png", too_small_bytes, "too_small"),
    "bomb_header": RejectCase("bomb.png", huge_header_png_bytes, "too_large"),
    "unreadable": RejectCase("dangling.jpg", None, "unreadable"),
}

# (row, col) probes use the stored image's coordinates.
NORMALISE_CASES = {
    "rgb_jpeg": NormaliseCase("plain.jpg", rgb_jpeg_bytes, "jpeg", (32, 48), {(2, 2): RED}, 40, original=True),
    "png_named_jpg": NormaliseCase("really_png.jpg", rgb_png_bytes, "png", (32, 48), {(2, 2): RED}, 0, original=True),
    "cmyk_jpeg": NormaliseCase("cmyk.jpg", cmyk_jpeg_bytes, "jpeg", (32, 48), {(2, 2): RED}, 40),
    "grayscale_jpeg": NormaliseCase("gray.jpg", grayscale_jpeg_bytes, "jpeg", (32, 48)),
    "rgba_png": NormaliseCase("rgba.png", rgba_png_bytes, "png", (32, 48), {(2, 2): RED, (16, 40): WHITE}, 0),
    "palette_transparent_png": NormaliseCase(
        "palette.png", palette_transparent_png_bytes, "png", (32, 48), {(16, 4): RED, (16, 40): WHITE}, 0
    ),
    "la_png": NormaliseCase("la.png", la_png_bytes, "png", (32, 48), {(16, 4): (100, 100, 100), (16, 40): WHITE}, 0),
    "gray16_png": NormaliseCase(
        "gray16.png", gray16_png_bytes, "png", (32, 48), {(16, 4): WHITE, (16, 40): (128, 128, 128)}, 0
    ),
    "exif_rotated_jpeg": NormaliseCase(
        "rotated.jpg", exif_rotated_jpeg_bytes, "jpeg", (48, 32), {(2, 29): RED, (2, 2): (20, 60, 210)}, 45
    ),
    "animated_gif": NormaliseCase("animated.gif", animated_gif_bytes, "png", (40, 40), {(20, 20): RED}, 0),
    "bmp": NormaliseCase("bitmap.bmp", bmp_bytes, "png", (32, 48), {(2, 2): RED}, 0),
    "webp": NormaliseCase("lossless.webp", webp_bytes, "png", (32, 48), {(2, 2): RED}, 0),
    "tiff": NormaliseCase("scan.tiff", tiff_bytes, "png", (32, 48), {(2, 2): RED}, 0),
}


KEPT, REJECTED, IGNORED = "kept", "rejected", "ignored"
ONE_OF_TWIN = "one_of_twin"  # a duplicate pair: one copy kept, the other rejected as `duplicate`


@dataclasses.dataclass(frozen=True)
class Expected:
    """What the ingest must do with one file of a fixture tree (paths relative to the tree)."""

    case: str
    outcome: str  # KEPT, REJECTED, IGNORED or ONE_OF_TWIN
    reason: Optional[str] = None  # the reject reason when REJECTED
    stored_format: Optional[str] = None  # when kept
    size: Optional[Tuple[int, int]] = None  # (height, width) when kept


def write_file(path: str, data: bytes) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return path


CLASSES = ("ants", "bees", "wasps")
BAD_NAME = b"ants/caf\xe9.jpg"  # Latin-1 bytes: not valid UTF-8
BAD_NAME_LISTED = "ants/caf\\xe9.jpg"  # how rejected.csv lists it (the byte escaped)


def build_fixture_tree(
    root: str, classes=CLASSES, good_per_class: int = 20, ignored: bool = True, bad_name: bool = False
) -> Dict[str, Expected]:
    """Write a class-per-folder tree holding every case; return {relative path: Expected}.

    Each class gets `good_per_class` distinct ordinary JPEGs (so data validation sees healthy
    classes). The reject and normalisation cases go into the first class, except: a duplicate
    pair in the second class (one copy kept, the other rejected as `duplicate`; which one is the
    pipeline's choice, so both are listed as ONE_OF_TWIN), and a
    label-conflict pair, the same bytes in the first and the second class (both rejected).
    With `ignored`, a `.DS_Store`, a `Thumbs.db` and a file outside the class folders are added;
    they are expected to be counted as ignored, not as kept or rejected. With `bad_name`, a good
    image whose name is not valid UTF-8 (`BAD_NAME`, in the first class; `classes` must then be
    the default) is rejected as `bad_filename` (listed as `BAD_NAME_LISTED`).
    """
    expected: Dict[str, Expected] = {}
    for c, name in enumerate(classes):
        for i in range(good_per_class):
            rel = f"{name}/img_{i:03d}.jpg"
            write_file(os.path.join(root, rel), rgb_jpeg_bytes(48, 40, seed=1000 * c + i))
            expected[rel] = Expected("good", KEPT, None, "jpeg", (40, 48))
    first, second = classes[0], classes[1]
    for case, spec in REJECT_CASES.items():
        rel = f"{first}/{spec.file_name}"
        path = os.path.join(root, rel)
        if spec.make is None:
            os.symlink(os.path.join(root, "no-such-file.jpg"), path)
        else:
            write_file(path, spec.make())
        expected[rel] = Expected(case, REJECTED, spec.reason)
    for case, spec in NORMALISE_CASES.items():
        rel = f"{first}/{spec.file_name}"
        write_file(os.path.join(root, rel), spec.make())
        expected[rel] = Expected(case, KEPT, None, spec.stored_format, spec.size)
    twin = rgb_jpeg_bytes(40, 40, seed=4242)
    for rel in (f"{second}/dup_a.jpg", f"{second}/dup_b.jpg"):
        write_file(os.path.join(root, rel), twin)
        expected[rel] = Expected("duplicate", ONE_OF_TWIN, "duplicate", "jpeg", (40, 40))
    conflict = rgb_jpeg_bytes(40, 40, seed=777)
    for rel in (f"{first}/conflict.jpg", f"{second}/conflict.jpg"):
        write_file(os.path.join(root, rel), conflict)
        expected[rel] = Expected("label_conflict", REJECTED, "label_conflict")
    if bad_name:
        with open(os.path.join(os.fsencode(root), BAD_NAME), "wb") as f:
            f.write(rgb_jpeg_bytes(40, 40, seed=31337))
        expected[BAD_NAME_LISTED] = Expected("bad_filename", REJECTED, "bad_filename")
    if ignored:
        for rel in (f"{first}/.DS_Store", f"{second}/Thumbs.db", "README.txt"):
            write_file(os.path.join(root, rel), b"not part of the dataset\n")
            expected[rel] = Expected("ignored", IGNORED)
    return expected


# --- One ingest run over the fixture tree, shared by the ingest tests of a pytest process ---------

# The run's limits: `big.png` (300x200) is above max_pixels, `large.png` (160x120) above max_side.
TREE_MAX_PIXELS = 50_000
TREE_MAX_SIDE = 64
RESIZE_CASE = NormaliseCase("large.png", lambda: rgb_png_bytes(160, 120, seed=3), "png", (48, 64), {(1, 1): RED}, 0)
BIG_CASE = RejectCase("big.png", big_png_bytes, "too_large")


@dataclasses.dataclass(frozen=True)
class IngestedTree:
    """A fixture tree, what is expected of each file, and what the ingest made of it."""

    data_dir: str
    output_dir: str
    expected: Dict[str, "Expected"]
    stats: dict
    rejected: Dict[str, dict]  # rejected.csv rows by path
    manifest: Dict[str, dict]  # manifest.csv rows by path
    records: Dict[str, dict]  # parsed tf.Examples by filename (numpy values)


_ingested: Dict[str, IngestedTree] = {}


def ingest_fixture_tree(tmp_root: str) -> IngestedTree:
    """Build the fixture tree under `tmp_root` and ingest it once per process (later calls reuse it)."""
    if "tree" in _ingested:
        return _ingested["tree"]
    import csv
    import glob
    import json

    import tensorflow as tf

    import schemas
    from components.ingest import IngestConfig, run

    data_dir, output_dir = os.path.join(tmp_root, "data"), os.path.join(tmp_root, "ingest")
    expected = build_fixture_tree(data_dir, bad_name=True)
    first = sorted({rel.split("/")[0] for rel in expected if "/" in rel})[0]
    for spec, outcome in ((RESIZE_CASE, KEPT), (BIG_CASE, REJECTED)):
        rel = f"{first}/{spec.file_name}"
        write_file(os.path.join(data_dir, rel), spec.make())
        expected[rel] = (
            Expected("resized", KEPT, None, spec.stored_format, spec.size)
            if outcome == KEPT
            else Expected("too_large_real", REJECTED, spec.reason)
        )
    run(IngestConfig(data_dir=data_dir, max_pixels=TREE_MAX_PIXELS, max_side=TREE_MAX_SIDE), output_dir)

    def table(name):
        with open(os.path.join(output_dir, name), newline="") as f:
            return {row["path"]: row for row in csv.DictReader(f)}

    with open(os.path.join(output_dir, "stats.json")) as f:
        stats = json.load(f)
    records = {}
    spec = schemas.feature_spec()
    for path in glob.glob(os.path.join(output_dir, "data", "*", "*", "*.tfrecord-*")):
        for raw in tf.data.TFRecordDataset(path):
            example = {k: v.numpy() for k, v in tf.io.parse_single_example(raw, spec).items()}
            records[example["filename"].decode()] = example
    _ingested["tree"] = IngestedTree(
        data_dir, output_dir, expected, stats, table("rejected.csv"), table("manifest.csv"), records
    )
    return _ingested["tree"]


def assert_accounting(stats: dict) -> None:
    """The ingest's invariant, from stats.json: kept + rejected + ignored = files found."""
    files = stats["files"]
    assert files["kept"] + files["rejected"] + files["ignored"] == files["found"], files
    assert sum(stats["rejected_by_reason"].values()) == files["rejected"]
    assert sum(stats["ignored_by_reason"].values()) == files["ignored"]
