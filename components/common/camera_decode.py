"""Encoded bytes -> the upright, 8-bit RGB pixels the ingest would have stored, inside the graph.

Why: the ingest normalises every image with Pillow (components/ingest/decode.py) before it becomes a
record, while the serving signatures, `pipeline.predict`, `pipeline.validate` and the gate decode
the bytes a user sends. TensorFlow's decoders ignore EXIF orientation and drop alpha without
compositing, so a phone photo taken in portrait was served sideways and a transparent cut-out on
black: training/serving skew. `decode_normalised` applies the ingest's rules with TensorFlow ops,
so a SavedModel served by TF Serving, `saved_model_cli` or `pipeline.serve` sees what the trainer
saw, with no client code. tests/test_camera_encodings.py holds the two implementations to each
other on a catalogue of real-world encodings.

The rules (one list; the ingest's Pillow code follows the same ones):
  * EXIF orientation (JPEG APP1 "Exif", PNG eXIf, WebP EXIF chunk) is applied: 2-8 flip or rotate
    as Pillow's `ImageOps.exif_transpose` does; anything unreadable counts as 1 (upright).
  * Transparency (RGBA, grey+alpha, palette or colour-key tRNS PNG, alpha WebP, transparent GIF) is
    composited on `BACKGROUND`, white. A GIF's transparent colour is drawn white by patching its
    first frame's colour table, since TensorFlow's GIF decoder turns transparent pixels black.
  * Grey and palette images become RGB; 16-bit PNG samples are scaled to 8 bits with rounding.
  * JPEGs are decoded with libjpeg's accurate integer DCT, the one Pillow uses: CMYK and YCCK JPEGs
    (converted by TensorFlow the way Pillow converts them) then agree exactly, and the ingest's
    re-encodings to the JPEG rounding; TensorFlow's default fast DCT differed by up to 15 levels.
  * Animations keep their first frame.
"""

import tensorflow as tf

from components.common.normalisation import BACKGROUND, EXIF_ORIENTATION_TAG, SERVED_FORMATS

_JPEG, _PNG, _GIF, _BMP, _WEBP = (
    [name for name, _ in SERVED_FORMATS].index(name) for name in ("JPEG", "PNG", "GIF", "BMP", "WebP")
)  # the format indices image_limits.format_index gives
assert BACKGROUND == (255, 255, 255), "_flatten's integer compositing and the GIF patch are written for white"
# Segments, chunks or GIF (sub-)blocks a header walk reads: real files need tens (an animated WebP puts
# EXIF after its frames); each step costs ~60 us in a while_loop, so a hostile file costs 0.25 s at most.
_MAX_STEPS = 4096
_MAX_IFD_ENTRIES = 512


def _length(encoded) -> tf.Tensor:
    return tf.cast(tf.strings.length(encoded), tf.int64)


def _substr(encoded, pos, size) -> tf.Tensor:
    """`size` bytes at `pos` (fewer past the end, empty outside the string): never an error."""
    start = tf.clip_by_value(tf.cast(pos, tf.int64), 0, _length(encoded))
    return tf.strings.substr(encoded, tf.cast(start, tf.int32), tf.cast(size, tf.int32))


def _bytes_at(encoded, pos, size: int) -> tf.Tensor:
    """`size` bytes at `pos` as int64 [size], zeros past the end."""
    padded = tf.strings.substr(tf.strings.join([_substr(encoded, pos, size), b"\0" * size]), 0, size)
    return tf.cast(tf.io.decode_raw(padded, tf.uint8), tf.int64)


def _byte(encoded, pos) -> tf.Tensor:
    return _bytes_at(encoded, pos, 1)[0]


def _uint(encoded, pos, size: int, little) -> tf.Tensor:
    """The unsigned integer of `size` bytes at `pos`, little-endian where `little` (a bool tensor)."""
    data = _bytes_at(encoded, pos, size)
    weights = tf.constant([1 << (8 * i) for i in range(size)], tf.int64)
    return tf.where(little, tf.reduce_sum(data * weights), tf.reduce_sum(data * tf.reverse(weights, [0])))


def _loop(more, body, start):
    return tf.while_loop(more, body, start, maximum_iterations=_MAX_STEPS)


_BIG = False  # JPEG and PNG integers are big-endian (`little` of _uint)


def _jpeg_tiff(encoded) -> tf.Tensor:
    """Offset of the TIFF header in the first APP1 "Exif" segment before the first scan, or -1."""

    def more(pos, found):
        marker = _bytes_at(encoded, pos, 2)
        segment = (marker[1] != 0xDA) & (marker[1] != 0xD9) & (marker[1] != 0xD8) & (marker[1] != 0)
        return (found < 0) & (marker[0] == 0xFF) & segment

    def body(pos, found):
        is_exif = (_byte(encoded, pos + 1) == 0xE1) & (_substr(encoded, pos + 4, 6) == b"Exif\0\0")
        return pos + 2 + _uint(encoded, pos + 2, 2, _BIG), tf.where(is_exif, pos + 10, found)

    _, found = _loop(more, body, (tf.constant(2, tf.int64), tf.constant(-1, tf.int64)))
    return found


def _png_chunks(encoded) -> tuple:
    """(offset of the eXIf chunk's data or -1, offset of the tRNS chunk's data or -1, its length), from
    the chunks before the first IDAT, where the PNG specification puts both."""

    def more(pos, exif, trns, trns_length):
        kind = _substr(encoded, pos + 4, 4)
        return (pos + 8 <= _length(encoded)) & (kind != b"IDAT") & (kind != b"IEND")

    def body(pos, exif, trns, trns_length):
        length, kind = _uint(encoded, pos, 4, _BIG), _substr(encoded, pos + 4, 4)
        return (
            pos + 12 + length,
            tf.where(kind == b"eXIf", pos + 8, exif),
            tf.where(kind == b"tRNS", pos + 8, trns),
            tf.where(kind == b"tRNS", length, trns_length),
        )

    minus, zero = tf.constant(-1, tf.int64), tf.constant(0, tf.int64)
    _, exif, trns, trns_length = _loop(more, body, (tf.constant(8, tf.int64), minus, minus, zero))
    return exif, trns, trns_length


def _webp_tiff(encoded) -> tf.Tensor:
    """Offset of the TIFF header in a WebP's EXIF chunk (after an "Exif\\0\\0" prefix, if any), or -1."""

    def more(pos, found):
        return (found < 0) & (pos + 8 <= _length(encoded))

    def body(pos, found):
        length = _uint(encoded, pos + 4, 4, True)
        return pos + 8 + length + length % 2, tf.where(_substr(encoded, pos, 4) == b"EXIF", pos + 8, found)

    _, found = _loop(more, body, (tf.constant(12, tf.int64), tf.constant(-1, tf.int64)))
    prefixed = (found >= 0) & (_substr(encoded, found, 6) == b"Exif\0\0")
    return tf.where(prefixed, found + 6, found)


def _tiff_orientation(encoded, tiff) -> tf.Tensor:
    """IFD0's Orientation (tag 0x0112) in the TIFF structure at offset `tiff`; 1 when absent or invalid."""
    order = _substr(encoded, tiff, 2)
    little = tf.equal(order, b"II")
    known = (tiff >= 0) & (little | tf.equal(order, b"MM"))
    ifd = tiff + _uint(encoded, tiff + 4, 4, little)
    count = tf.minimum(_uint(encoded, ifd, 2, little), _MAX_IFD_ENTRIES)

    def body(i, value):
        entry = ifd + 2 + 12 * i
        found = _uint(encoded, entry, 2, little) == EXIF_ORIENTATION_TAG
        return i + 1, tf.where(found, _uint(encoded, entry + 8, 2, little), value)

    zero = tf.constant(0, tf.int64)
    _, value = tf.while_loop(lambda i, value: (i < count) & (value == 0), body, (zero, zero))
    return tf.where(known & (value >= 1) & (value <= 8), value, 1)


def orient(image: tf.Tensor, value) -> tf.Tensor:
    """Turn [h, w, c] pixels stored with EXIF orientation `value` upright, as `ImageOps.exif_transpose`."""

    def transpose(x):
        return tf.transpose(x, [1, 0, 2])

    branches = [
        lambda: image,  # 1
        lambda: tf.reverse(image, [1]),  # 2: mirrored
        lambda: tf.image.rot90(image, 2),  # 3: upside down
        lambda: tf.reverse(image, [0]),  # 4: mirrored upside down
        lambda: transpose(image),  # 5: Pillow's TRANSPOSE
        lambda: tf.image.rot90(image, 3),  # 6: Pillow's ROTATE_270, a quarter turn clockwise
        lambda: tf.image.rot90(transpose(image), 2),  # 7: Pillow's TRANSVERSE
        lambda: tf.image.rot90(image, 1),  # 8: Pillow's ROTATE_90, a quarter turn anticlockwise
    ]
    return tf.switch_case(tf.cast(value, tf.int32) - 1, branches)


def _rgb(colour: tf.Tensor) -> tf.Tensor:
    """Grey [h, w, 1] or RGB [h, w, 3] as RGB."""
    rgb = tf.cond(tf.equal(tf.shape(colour)[2], 1), lambda: tf.tile(colour, [1, 1, 3]), lambda: colour)
    return tf.ensure_shape(rgb, [None, None, 3])


def _flatten(image: tf.Tensor, keyed=None) -> tf.Tensor:
    """uint8 [h, w, 1-4] (grey, grey+alpha, RGB, RGBA) as RGB on BACKGROUND, rounded as Pillow rounds;
    `keyed`: a bool [h, w, 1] mask of colour-key transparent pixels (a PNG's tRNS), or None. Images
    without transparency cost one slice: nothing is allocated for an alpha they do not have."""
    channels = tf.shape(image)[2]
    has_alpha = tf.equal(channels % 2, 0)
    colour = _rgb(image[:, :, : channels - tf.cast(has_alpha, tf.int32)])

    def composite():
        alpha = tf.cond(
            has_alpha, lambda: image[:, :, -1:], lambda: tf.fill(tf.shape(image[:, :, :1]), tf.constant(255, tf.uint8))
        )
        if keyed is not None:
            alpha = tf.where(keyed, tf.zeros_like(alpha), alpha)
        # On white, Pillow's rounded c * a / 255 + 255 * (255 - a) / 255 is 255 - round((255 - c) * a / 255):
        # in 16-bit integers, so a 12-megapixel cut-out needs no float copies (components/common/decoding_budget.py).
        hidden = (255 - tf.cast(colour, tf.uint16)) * tf.cast(alpha, tf.uint16)
        return 255 - tf.cast((hidden + 127) // 255, tf.uint8)

    transparent = has_alpha if keyed is None else has_alpha | tf.reduce_any(keyed)
    return tf.cond(transparent, composite, lambda: colour)


def _png(encoded, trns, trns_length) -> tf.Tensor:
    """A PNG as uint8 RGB: alpha and colour-key (tRNS) transparency composited on BACKGROUND. 16-bit
    PNGs are decoded at 16 bits (so a key compares exactly) and rounded to 8; the rest at 8 bits."""
    colour_type, depth = _byte(encoded, 25), _byte(encoded, 24)
    # tRNS on a grey (type 0) or RGB (type 2) image names one transparent colour, in the image's bit depth.
    grey_key, rgb_key = (colour_type == 0) & (trns_length >= 2), (colour_type == 2) & (trns_length >= 6)
    key = tf.stack([_uint(encoded, trns + 2 * i, 2, _BIG) for i in range(3)])
    key = tf.cast(tf.where(grey_key, tf.fill([3], key[0]), key), tf.int32)

    def keyed(samples, scaled_key):  # the colour-key mask of int32 samples
        channels = tf.shape(samples)[2]
        colour = _rgb(samples[:, :, : channels - tf.cast(tf.equal(channels % 2, 0), tf.int32)])
        return tf.reduce_all(tf.equal(colour, scaled_key), axis=2, keepdims=True)

    def mask_of(samples, scaled_key):
        none = tf.zeros_like(samples[:, :, :1], tf.bool)
        return tf.cond(grey_key | rgb_key, lambda: keyed(tf.cast(samples, tf.int32), scaled_key), lambda: none)

    def eight_bits():  # libpng widens 1, 2 and 4-bit grey to 8 bits (x 255, 85, 17), and so the key
        image = tf.io.decode_png(encoded, channels=0)
        widen = 255 // (tf.bitwise.left_shift(1, tf.cast(tf.clip_by_value(depth, 1, 8), tf.int32)) - 1)
        return _flatten(image, mask_of(image, key * tf.where(grey_key, widen, 1)))

    def sixteen_bits():
        wide = tf.cast(tf.io.decode_png(encoded, channels=0, dtype=tf.uint16), tf.int32)
        return _flatten(tf.cast((wide * 255 + 32767) // 65535, tf.uint8), mask_of(wide, key))

    return tf.cond(tf.equal(depth, 16), sixteen_bits, eight_bits)


def _gif_table_bytes(packed) -> tf.Tensor:
    """The size of the colour table a GIF packed field announces (0 without one)."""
    return tf.where(packed >= 128, 3 * tf.bitwise.left_shift(tf.constant(2, tf.int64), packed % 8), 0)


def _gif_on_white(encoded) -> tf.Tensor:
    """The GIF with its first frame's transparent colour drawn white: the colour-table entry of the
    transparent index set to BACKGROUND and the Graphic Control Extension's transparency flag cleared,
    so that TensorFlow's decoder shows what compositing on white shows."""
    screen = _byte(encoded, 10)

    # One flat walk over the blocks before the first image: an extension's introducer and label, then
    # its sub-blocks to the empty one. Bounded in steps, not only by the file's length, so that a
    # request of megabytes of one-byte sub-blocks costs milliseconds (no patch is made if it runs out).
    def more(pos, gce, in_blocks):
        return in_blocks | (_byte(encoded, pos) == 0x21)

    def body(pos, gce, in_blocks):
        size = _byte(encoded, pos)
        starts = tf.logical_not(in_blocks)
        gce = tf.where(starts & (_byte(encoded, pos + 1) == 0xF9), pos, gce)
        return tf.where(starts, pos + 2, pos + 1 + size), gce, starts | (size != 0)

    image, gce, _ = _loop(more, body, (13 + _gif_table_bytes(screen), tf.constant(-1, tf.int64), tf.constant(False)))
    flags, index = _byte(encoded, gce + 3), _byte(encoded, gce + 6)
    local = _byte(encoded, image + 9)
    table, table_bytes = tf.where(local >= 128, image + 10, 13), _gif_table_bytes(tf.where(local >= 128, local, screen))
    transparent = (_byte(encoded, image) == 0x2C) & (gce >= 0) & (flags % 2 == 1) & (3 * index < table_bytes)
    entry = table + 3 * index
    byte_values = tf.constant([bytes([i]) for i in range(256)])

    def patched():  # both replacements keep the length, so their order does not matter
        with_white = _replace(encoded, entry, tf.constant(bytes(BACKGROUND)), 3)
        return _replace(with_white, gce + 3, tf.gather(byte_values, flags - 1), 1)

    return tf.cond(transparent, patched, lambda: encoded)


def _replace(encoded, pos, piece, size: int) -> tf.Tensor:
    """`encoded` with its `size` bytes at `pos` replaced by `piece` (of the same size)."""
    return tf.strings.join([_substr(encoded, 0, pos), piece, _substr(encoded, pos + size, _length(encoded))])


def decode_normalised(encoded: tf.Tensor, fmt) -> tf.Tensor:
    """One encoded image of format index `fmt` (image_limits.FORMATS) as upright uint8 RGB [h, w, 3]
    by the ingest's rules (module docstring); a format TensorFlow cannot decode raises InvalidArgument.
    Each branch walks its format's header once, for the pixels' rules and the EXIF offset both."""
    none = tf.constant(-1, tf.int64)

    def jpeg():  # grey, RGB, CMYK and YCCK: TensorFlow converts them to RGB as Pillow does
        return tf.io.decode_jpeg(encoded, channels=3, dct_method="INTEGER_ACCURATE"), _jpeg_tiff(encoded)

    def png():
        exif, trns, trns_length = _png_chunks(encoded)
        return _png(encoded, trns, trns_length), exif

    def gif():
        return tf.io.decode_gif(_gif_on_white(encoded))[0], none

    def decoded():  # BMP and WebP (alpha where they have one); anything else fails in decode_image
        return _flatten(tf.io.decode_image(encoded, channels=0, expand_animations=False))

    def webp():
        return decoded(), _webp_tiff(encoded)

    def other():
        return decoded(), none

    branches = {_JPEG: jpeg, _PNG: png, _GIF: gif, _BMP: other, _WEBP: webp}
    image, tiff = tf.switch_case(tf.cast(fmt, tf.int32), [branches[i] for i in range(len(branches))], default=other)
    # Most images carry no EXIF block, and most that do are upright: neither pays for the IFD walk or the turn.
    value = tf.cond(tiff >= 0, lambda: _tiff_orientation(encoded, tiff), lambda: tf.constant(1, tf.int64))
    image = tf.ensure_shape(image, [None, None, 3])
    image = tf.cond(tf.equal(value, 1), lambda: image, lambda: orient(image, value))
    return tf.ensure_shape(image, [None, None, 3])
