"""The normalisation rules both decoders follow, without TensorFlow (the ingest's workers do not load it).

The ingest applies them with Pillow (components/ingest/decode.py), every serving path with
TensorFlow ops (components/common/camera_decode.py); tests/test_camera_encodings.py holds the two to
each other. Transparency goes on white because transparent images are drawn to be seen on light
pages (logos and product shots, dark on transparent, would vanish on black).
"""

BACKGROUND = (255, 255, 255)  # what transparency is composited on
EXIF_ORIENTATION_TAG = 0x0112

# The formats TensorFlow's decoders, and so every SavedModel signature, read; told by content, by these
# (offset, bytes) signatures. Anything else the ingest accepts (TIFF) is converted by the CLIs first.
SERVED_FORMATS = (
    ("JPEG", ((0, b"\xff\xd8\xff"),)),
    ("PNG", ((0, b"\x89PNG\r\n\x1a\n"),)),
    ("GIF", ((0, b"GIF8"),)),
    ("BMP", ((0, b"BM"),)),
    ("WebP", ((0, b"RIFF"), (8, b"WEBP"))),
)


def served_format(data: bytes):
    """The name of the served format `data` is in (SERVED_FORMATS), or None."""
    for name, signature in SERVED_FORMATS:
        if all(data[offset : offset + len(part)] == part for offset, part in signature):
            return name
    return None
