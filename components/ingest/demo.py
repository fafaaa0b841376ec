"""The built-in demo dataset: drawn here, deterministically, so the demo runs offline anywhere.

`generate_demo(dest_dir, seed=0)` writes a class-per-folder tree of 800 64x64 JPEGs in five
classes of shapes and textures (circles, squares, triangles, stripes, checkerboard) that a small
CNN trained from scratch separates in a few epochs. Sizes, positions, counts, angles and the
lighting vary per image, every image carries some sensor-like noise, and each class draws its
colours from its own hue band. Measured: a 3-layer CNN reaches ~99% validation accuracy within 3
epochs; the trainer's MobileNetV2 (alpha 0.35, 64 px, no pretrained weights, default 12-epoch
scratch stage) 0.90 validation / 0.91 test accuracy. With half the images (80 a class) that
MobileNetV2 reached only 0.65, hence 160.

It also holds what a real folder holds, so that a user sees the ingest clean it up (see
`BROKEN_FILES`): a truncated JPEG, an empty file, a text file named `.jpg`, a tiny image, a
duplicate, the same image in two classes, a README outside the class folders, a `.DS_Store`;
and images that are kept after normalisation (CMYK JPEG, RGBA PNG, EXIF-rotated JPEG, GIF).

The same seed gives the same bytes on every call and every machine with the same Pillow and
libjpeg (files are written in a fixed order; nothing depends on time or randomness outside the
seeded generators).
"""

import colorsys
import io
import os
from typing import Callable, Dict, Tuple

import numpy as np
import tensorflow as tf
from PIL import Image, ImageDraw

from components.common.errors import UsageError
from components.common.publish import publish_dir

CLASSES = ("circles", "squares", "triangles", "stripes", "checkerboard")
# Each class also draws its shapes from its own hue band (degrees), as real classes often have
# their own colours (sky, grass, ...): the shapes alone need more epochs than a demo should take.
HUES = {"circles": 0, "squares": 120, "triangles": 240, "stripes": 60, "checkerboard": 295}
IMAGES_PER_CLASS = 160
SIZE = 64
JPEG_QUALITY = 90

# Deliberately broken or odd files: relative path -> what the ingest does with it.
BROKEN_FILES = {
    "circles/truncated_photo.jpg": "rejected: truncated",
    "squares/empty.jpg": "rejected: empty",
    "triangles/notes.jpg": "rejected: not_image (a text file named .jpg)",
    "checkerboard/icon.png": "rejected: too_small (8x8)",
    "stripes/copy of stripes_0003.jpg": "rejected: duplicate (same bytes as stripes/stripes_0003.jpg)",
    "circles/mixed_up.jpg": "rejected: label_conflict (the same image is in squares/)",
    "squares/mixed_up.jpg": "rejected: label_conflict (the same image is in circles/)",
    "circles/print_cmyk.jpg": "kept: CMYK converted to RGB",
    "squares/logo_rgba.png": "kept: transparency composited on white",
    "triangles/phone_rotated.jpg": "kept: EXIF orientation applied",
    "stripes/animated.gif": "kept: first frame of an animation, stored as PNG",
    "README.txt": "ignored: outside the class folders",
    "checkerboard/.DS_Store": "ignored: a hidden system file",
}


def _background(rng: np.random.Generator) -> Image.Image:
    """Smooth random lighting in muted, nearly grey tones: a 3x3 grid upsampled to SIZE."""
    grey = rng.integers(70, 190, size=(3, 3, 1))
    tint = rng.integers(-20, 21, size=(3, 3, 3))
    grid = np.clip(grey + tint, 0, 255).astype(np.uint8)
    return Image.fromarray(grid).resize((SIZE, SIZE), Image.Resampling.BILINEAR)


def _colour(rng: np.random.Generator, label: str) -> Tuple[int, int, int]:
    """A saturated colour from the class's own hue band (+/- 20 degrees around `HUES[label]`)."""
    hue = (HUES[label] + rng.uniform(-20, 20)) % 360 / 360
    r, g, b = colorsys.hsv_to_rgb(hue, rng.uniform(0.6, 1.0), rng.uniform(0.55, 1.0))
    return int(r * 255), int(g * 255), int(b * 255)


def _shapes(label: str, draw_one: Callable) -> Callable:
    """A class of 1-3 shapes drawn by `draw_one(draw, rng, centre, radius, colour)`."""

    def draw(rng: np.random.Generator) -> Image.Image:
        image = _background(rng)
        canvas = ImageDraw.Draw(image)
        colour = _colour(rng, label)
        for _ in range(int(rng.integers(1, 4))):
            radius = int(rng.integers(8, 20))
            centre = rng.integers(radius, SIZE - radius, size=2)
            draw_one(canvas, rng, (int(centre[0]), int(centre[1])), radius, colour)
        return image

    return draw


def _circle(canvas, rng, centre, r, colour):
    canvas.ellipse((centre[0] - r, centre[1] - r, centre[0] + r, centre[1] + r), fill=colour)


def _square(canvas, rng, centre, r, colour):
    canvas.rectangle((centre[0] - r, centre[1] - r, centre[0] + r, centre[1] + r), fill=colour)


def _triangle(canvas, rng, centre, r, colour):
    canvas.regular_polygon((centre[0], centre[1], r + 2), 3, rotation=float(rng.uniform(0, 120)), fill=colour)


def _stripes(rng: np.random.Generator) -> Image.Image:
    """Parallel stripes at a random angle and period, in two random colours."""
    background = _background(rng)
    colour = np.array(_colour(rng, "stripes"), np.float32)
    angle, period = rng.uniform(0, np.pi), rng.uniform(6, 14)
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    on = (np.sin((x * np.cos(angle) + y * np.sin(angle)) * 2 * np.pi / period) > 0)[..., None]
    pixels = np.where(on, colour, np.asarray(background, np.float32))
    return Image.fromarray(pixels.astype(np.uint8))


def _checkerboard(rng: np.random.Generator) -> Image.Image:
    """A checkerboard of random cell size and offset, in two random colours."""
    background = _background(rng)
    colour = np.array(_colour(rng, "checkerboard"), np.float32)
    cell = int(rng.integers(5, 13))
    dy, dx = rng.integers(0, cell, size=2)
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    on = ((((y + dy) // cell) + ((x + dx) // cell)) % 2 == 0)[..., None]
    pixels = np.where(on, colour, np.asarray(background, np.float32))
    return Image.fromarray(pixels.astype(np.uint8))


DRAW = {
    "circles": _shapes("circles", _circle),
    "squares": _shapes("squares", _square),
    "triangles": _shapes("triangles", _triangle),
    "stripes": _stripes,
    "checkerboard": _checkerboard,
}


def draw_image(label: str, index: int, seed: int = 0) -> Image.Image:
    """Image `index` of class `label`: the drawing plus noise, from its own seeded generator."""
    rng = np.random.default_rng([seed, CLASSES.index(label), index])
    pixels = np.asarray(DRAW[label](rng), np.int16) + rng.normal(0, 6, size=(SIZE, SIZE, 3)).astype(np.int16)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _encode(image: Image.Image, fmt: str, **params) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **params)
    return out.getvalue()


def _jpeg(image: Image.Image) -> bytes:
    return _encode(image, "JPEG", quality=JPEG_QUALITY)


def _odd_files(seed: int) -> Dict[str, bytes]:
    """The files of `BROKEN_FILES`, drawn from extra images of the classes they sit in."""
    extra = IMAGES_PER_CLASS  # indices past the regular images, so none duplicates a regular one
    truncated = _jpeg(draw_image("circles", extra, seed))
    rgba = draw_image("squares", extra + 1, seed).convert("RGBA")
    alpha = np.full((SIZE, SIZE), 255, np.uint8)
    alpha[:, : SIZE // 4] = 0  # a transparent left margin, as logos have
    rgba.putalpha(Image.fromarray(alpha))
    exif = Image.Exif()
    exif[0x0112] = 6  # the camera was held sideways: viewers (and the ingest) rotate 90 degrees
    sideways = draw_image("triangles", extra + 2, seed).transpose(Image.Transpose.ROTATE_90)
    frames = [draw_image("stripes", extra + 3 + i, seed).convert("P", palette=Image.Palette.ADAPTIVE) for i in range(3)]
    conflict = _jpeg(draw_image("circles", extra + 4, seed))
    return {
        "circles/truncated_photo.jpg": truncated[: len(truncated) // 2],
        "squares/empty.jpg": b"",
        "triangles/notes.jpg": b"Shopping list: milk, eggs. (Saved with the wrong extension.)\n",
        "checkerboard/icon.png": _encode(draw_image("checkerboard", extra, seed).resize((8, 8)), "PNG"),
        "stripes/copy of stripes_0003.jpg": _jpeg(draw_image("stripes", 3, seed)),
        "circles/mixed_up.jpg": conflict,
        "squares/mixed_up.jpg": conflict,
        "circles/print_cmyk.jpg": _encode(draw_image("circles", extra + 5, seed).convert("CMYK"), "JPEG", quality=95),
        "squares/logo_rgba.png": _encode(rgba, "PNG"),
        "triangles/phone_rotated.jpg": _encode(sideways, "JPEG", quality=JPEG_QUALITY, exif=exif.tobytes()),
        "stripes/animated.gif": _encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=200),
        "README.txt": _readme(seed).encode(),
        "checkerboard/.DS_Store": b"\x00\x00\x00\x01Bud1" + b"\x00" * 32,
    }


def _readme(seed: int) -> str:
    lines = [
        f"transferline demo dataset (seed {seed}): {len(CLASSES)} classes x {IMAGES_PER_CLASS} drawn "
        f"{SIZE}x{SIZE} images ({', '.join(CLASSES)}),",
        "plus files that show the ingest's cleaning at work:",
        *[f"  {path}: {what}" for path, what in BROKEN_FILES.items()],
    ]
    return "\n".join(lines) + "\n"


def demo_files(seed: int = 0) -> Dict[str, bytes]:
    """Every file of the demo dataset, {relative path: bytes}, in a fixed order."""
    files = {
        f"{label}/{label}_{i:04d}.jpg": _jpeg(draw_image(label, i, seed))
        for label in CLASSES
        for i in range(IMAGES_PER_CLASS)
    }
    files.update(_odd_files(seed))
    return files


def generate_demo(dest_dir: str, seed: int = 0) -> str:
    """Write the demo dataset into `dest_dir` (which must not exist yet) and return `dest_dir`.

    The tree is written to a temporary sibling and renamed into place, so `dest_dir` either does
    not exist or is complete. Any `tf.io.gfile` path works (local, gs://, ...).
    """
    dest_dir = dest_dir.rstrip("/")
    if tf.io.gfile.exists(dest_dir):
        raise UsageError(f"demo dataset folder {dest_dir!r} already exists: remove it or choose another folder")
    with publish_dir(dest_dir, marker=False) as tmp:
        for label in CLASSES:
            tf.io.gfile.makedirs(os.path.join(tmp, label))
        for relpath, data in demo_files(seed).items():
            with tf.io.gfile.GFile(os.path.join(tmp, relpath), "wb") as f:
                f.write(data)
    return dest_dir
