"""A catalogue of real-world encodings of real photos: how cameras, phones and tools write images.

Each entry is (name, encoded bytes, the upright 8-bit RGB image a person sees, as a numpy array):
all eight EXIF orientations (JPEG APP1, PNG eXIf, WebP EXIF), transparency in every form (RGBA,
grey+alpha, palette and colour-key PNG, alpha WebP, transparent GIF), CMYK and Adobe YCCK JPEG,
16-bit PNG, greyscale, progressive, ICC-tagged and MPO JPEGs, and TIFF (which TensorFlow cannot decode). Used by tests/test_camera_encodings.py
to hold the serving paths to the ingest, and by benchmarks/camera_photos.py.
"""

import io

import numpy as np
from PIL import Image, ImageCms

# exif_transpose's operation for each orientation, and the operation that undoes it (to store a photo so).
_UNDO = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,  # stored a quarter turn anticlockwise; the tag says turn it clockwise
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def _save(image, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, **options)
    return out.getvalue()


def stored_rotated(upright: Image.Image, orientation: int, fmt: str = "JPEG", **options) -> bytes:
    """`upright` stored as a camera in another position stores it: pixels turned, and the EXIF tag
    that turns them back."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    stored = upright.transpose(_UNDO[orientation]) if orientation != 1 else upright
    return _save(stored, format=fmt, exif=exif.tobytes(), **options)


def _alpha_mask(size) -> np.ndarray:
    """A soft-edged cut-out: opaque in the middle, fading to fully transparent at the borders."""
    w, h = size
    y, x = np.mgrid[0:h, 0:w]
    distance = np.hypot((x - w / 2) / (w / 2), (y - h / 2) / (h / 2))
    return np.clip((1.2 - distance) * 400, 0, 255).astype(np.uint8)


def _ycck_jpeg(rgb: Image.Image) -> bytes:
    """An Adobe YCCK JPEG (what Photoshop writes for CMYK): Pillow writes CMYK with Adobe transform 0;
    YCCK stores C, M, Y as YCbCr of (255 - C, 255 - M, 255 - Y) with transform 2, which libjpeg undoes."""
    cmyk = np.asarray(rgb.convert("CMYK")).astype(np.float64)
    inverted = 255.0 - cmyk  # Pillow stores Adobe CMYK inverted; libjpeg's YCCK->CMYK expects the stored values
    r, g, b = 255.0 - inverted[..., 0], 255.0 - inverted[..., 1], 255.0 - inverted[..., 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = -0.168736 * r - 0.331264 * g + 0.5 * b + 128
    cr = 0.5 * r - 0.418688 * g - 0.081312 * b + 128
    planes = np.stack([y, cb, cr, inverted[..., 3]], axis=-1)
    stored = Image.fromarray(np.clip(np.rint(255.0 - planes), 0, 255).astype(np.uint8), "CMYK")
    data = bytearray(_save(stored, format="JPEG", quality=95))
    adobe = data.index(b"Adobe")
    data[adobe + 11] = 2  # the APP14 transform byte: 2 = YCCK
    return bytes(data)


def catalogue(photo: Image.Image) -> list:
    """[(name, encoded, upright RGB array)] for one real photo (any mode; used as RGB)."""
    rgb = photo.convert("RGB")
    upright = np.asarray(rgb)
    alpha = _alpha_mask(rgb.size)
    rgba = Image.fromarray(np.dstack([upright, alpha]), "RGBA")
    white = np.full_like(upright, 255)
    on_white = np.rint(upright * (alpha[..., None] / 255.0) + white * (1 - alpha[..., None] / 255.0)).astype(np.uint8)
    grey = rgb.convert("L")
    entries = [(f"jpeg_orientation_{o}", stored_rotated(rgb, o, quality=92), upright) for o in range(1, 9)]
    entries += [(f"png_orientation_{o}", stored_rotated(rgb, o, "PNG"), upright) for o in (3, 6, 8)]
    entries += [(f"webp_orientation_{o}", stored_rotated(rgb, o, "WEBP", lossless=True), upright) for o in (6, 8)]
    palette = rgb.quantize(64)
    palette_rgb = np.asarray(palette.convert("RGB"))
    hidden = palette_rgb[0, 0]
    keyed = np.all(palette_rgb == hidden, axis=2, keepdims=True)
    # The palette's first entry transparent (GIF and PNG); the top-left pixel's colour made transparent (tRNS key).
    first_entry = np.asarray(palette) == 0
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    sixteen = (upright.astype(np.uint16) * 257 + np.random.default_rng(0).integers(0, 257, upright.shape)).astype(
        np.uint16
    )
    entries += [
        ("png_rgba", _save(rgba, format="PNG"), on_white),
        ("png_la", _save(rgba.convert("LA"), format="PNG"), None),
        (
            "png_palette_trns",
            _save(palette, format="PNG", transparency=0),
            np.where(first_entry[..., None], 255, palette_rgb),
        ),
        (
            "png_rgb_key_trns",
            _save(Image.fromarray(palette_rgb), format="PNG", transparency=tuple(int(v) for v in hidden)),
            np.where(keyed, 255, palette_rgb),
        ),
        ("png_grey_key_trns", _save(grey, format="PNG", transparency=int(np.asarray(grey)[0, 0])), None),
        ("webp_rgba", _save(rgba, format="WEBP", lossless=True), on_white),
        (
            "gif_transparent",
            _save(palette, format="GIF", transparency=0),
            np.where(first_entry[..., None], 255, palette_rgb),
        ),
        ("jpeg_cmyk", _save(rgb.convert("CMYK"), format="JPEG", quality=95), None),
        ("jpeg_ycck", _ycck_jpeg(rgb), None),
        ("png_16bit_rgb", _save(Image.fromarray(sixteen[..., 0]), format="PNG"), None),
        ("png_16bit_grey", _save(Image.fromarray(sixteen[..., 1]), format="PNG"), None),
        ("jpeg_grey", _save(grey, format="JPEG", quality=92), np.asarray(grey.convert("RGB"))),
        ("jpeg_progressive", _save(rgb, format="JPEG", quality=90, progressive=True), upright),
        ("jpeg_icc_profile", _save(rgb, format="JPEG", quality=90, icc_profile=profile), upright),
        (
            "jpeg_mpo",
            _save(rgb, format="MPO", save_all=True, append_images=[rgb.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]),
            upright,
        ),
        ("png_rgb", _save(rgb, format="PNG"), upright),
        ("tiff_rgba_lzw", _save(rgba, format="TIFF", compression="tiff_lzw"), on_white),
        ("tiff_cmyk", _save(rgb.convert("CMYK"), format="TIFF"), None),
        ("tiff_orientation_6", stored_rotated(rgb, 6, "TIFF"), upright),
        ("bmp_rgb", _save(rgb, format="BMP"), upright),
    ]
    return entries
