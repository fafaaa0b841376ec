"""The pixel budget: an encoded image's decoded size read from its header, before anything is decoded.

Why: a 140 KB PNG can declare 12,000 x 12,000 pixels and a 875 KB one 30,000 x 30,000; decoding
either (the decode, its float32 copy and the antialiased resize, up to 24 bytes a
pixel measured) takes gigabytes. Every serving signature that decodes runs `check` first, inside
the graph, so TF Serving and `saved_model_cli` refuse such images as `pipeline.serve` does, with
an `InvalidArgument` naming the image, its size and the limit. `pipeline.serve` also runs
`problems` on a request before admitting it, to refuse it with the same message without raising
and to count the pixels it will decode against its memory budget (server/admission.py).

The sizes come from where each format keeps them: JPEG's SOF marker (`tf.image.extract_jpeg_shape`),
PNG's IHDR, BMP's info header, WebP's VP8/VP8L/VP8X chunk; GIF and animated WebP are walked block
by block to count their frames (giflib and libwebp decode every frame even when one is kept), the
walk stopping as soon as the budget is exceeded. Formats `decode_image` knows but whose size
cannot be read this way (JPEG XL) are refused.
"""

import functools

import tensorflow as tf

from components.common.normalisation import SERVED_FORMATS

FORMATS = tuple(name for name, _ in SERVED_FORMATS)
_UNKNOWN = len(FORMATS)
_HEAD = 32  # header bytes read at fixed offsets (WebP's VP8X canvas height ends at byte 30)


def _padded(encoded: tf.Tensor) -> tf.Tensor:
    """The first 32 bytes, zeros past the end (a short string must not fail the reads)."""
    return tf.strings.substr(tf.strings.join([encoded, tf.constant(b"\0" * _HEAD)]), 0, _HEAD)


def _head(padded: tf.Tensor) -> tf.Tensor:
    return tf.cast(tf.io.decode_raw(padded, tf.uint8), tf.int64)


def _le(head, offset: int, size: int) -> tf.Tensor:
    return sum(head[offset + i] * (1 << (8 * i)) for i in range(size))


def _be(head, offset: int, size: int) -> tf.Tensor:
    return sum(head[offset + i] * (1 << (8 * (size - 1 - i))) for i in range(size))


def _format(padded: tf.Tensor) -> tf.Tensor:
    def starts(offset, signature):
        return tf.strings.substr(padded, offset, len(signature)) == signature

    signatures = [
        functools.reduce(tf.logical_and, [starts(offset, part) for offset, part in signature])
        for _, signature in SERVED_FORMATS
    ]
    index = tf.constant(_UNKNOWN, tf.int32)
    for i in reversed(range(len(signatures))):
        index = tf.where(signatures[i], i, index)
    return index


def format_index(encoded: tf.Tensor) -> tf.Tensor:
    """The index into FORMATS of one encoded image, told by its signature; len(FORMATS) when unknown."""
    return _format(_padded(encoded))


def _bytes(encoded: tf.Tensor):
    data = tf.cast(tf.io.decode_raw(encoded, tf.uint8), tf.int64)
    size = tf.size(data, out_type=tf.int64)
    return (lambda i: tf.gather(data, tf.clip_by_value(i, 0, size - 1))), size


def _gif(encoded, head, max_pixels, max_frames):
    """(height, width, frames, decoded pixels): every frame is decoded to the logical screen's size,
    and giflib keeps each frame's own raster besides; both are counted."""
    width, height = _le(head, 6, 2), _le(head, 8, 2)
    at, size = _bytes(encoded)

    def table(packed):  # a colour table's bytes, from its packed field
        return tf.where(packed >= 128, 3 * tf.bitwise.left_shift(tf.constant(2, tf.int64), packed % 8), 0)

    def body(pos, frames, pixels, in_blocks):
        byte = at(pos)
        is_image, is_extension = byte == 0x2C, byte == 0x21
        image_start = pos + 10 + table(at(pos + 9)) + 1  # descriptor, local table, LZW code size
        block_end = tf.where(is_extension, pos + 2, tf.where(is_image, image_start, size))  # trailer: stop
        starts_image = tf.logical_and(tf.logical_not(in_blocks), is_image)
        frame_pixels = (_le_at(at, pos + 5) * _le_at(at, pos + 7)) + width * height
        return (
            tf.where(in_blocks, pos + 1 + byte, block_end),  # a sub-block (length byte 0 ends them)
            frames + tf.cast(starts_image, tf.int64),
            pixels + tf.where(starts_image, frame_pixels, 0),
            tf.where(in_blocks, byte != 0, is_extension | is_image),
        )

    def more(pos, frames, pixels, _):
        return (pos < size) & (frames <= max_frames) & (pixels <= max_pixels)

    zero = tf.constant(0, tf.int64)
    _, frames, pixels, _ = tf.while_loop(more, body, (13 + table(head[10]), zero, zero, tf.constant(False)))
    return height, width, frames, pixels


def _le_at(at, pos):
    return at(pos) + 256 * at(pos + 1)


def _webp(encoded, padded, head, max_pixels, max_frames):
    """(height, width, frames, decoded pixels) from the first chunk; an animation (VP8X's flag) is
    walked chunk by chunk to count its ANMF frames, each decoded to the canvas size."""
    chunk = tf.strings.substr(padded, 12, 4)
    lossless = _le(head, 21, 4)
    width = tf.where(
        chunk == b"VP8X",
        _le(head, 24, 3) + 1,
        tf.where(chunk == b"VP8L", lossless % 16384 + 1, _le(head, 26, 2) % 16384),
    )
    height = tf.where(
        chunk == b"VP8X",
        _le(head, 27, 3) + 1,
        tf.where(chunk == b"VP8L", tf.bitwise.right_shift(lossless, 14) % 16384 + 1, _le(head, 28, 2) % 16384),
    )
    canvas = width * height
    at, size = _bytes(encoded)

    def body(pos, frames):
        fourcc = [at(pos + i) for i in range(4)]
        is_frame = (fourcc[0] == ord("A")) & (fourcc[1] == ord("N")) & (fourcc[2] == ord("M")) & (fourcc[3] == ord("F"))
        length = at(pos + 4) + 256 * at(pos + 5) + 65536 * at(pos + 6) + 16777216 * at(pos + 7)
        return pos + 8 + length + length % 2, frames + tf.cast(is_frame, tf.int64)

    def more(pos, frames):
        return (pos + 8 <= size) & (frames <= max_frames) & (frames * canvas <= max_pixels)

    animated = (chunk == b"VP8X") & (head[20] % 4 >= 2)
    frames = tf.cond(
        animated,
        lambda: tf.while_loop(more, body, (tf.constant(12, tf.int64), tf.constant(0, tf.int64)))[1],
        lambda: tf.constant(1, tf.int64),
    )
    frames = tf.maximum(frames, 1)
    return height, width, frames, frames * canvas


def image_size(encoded: tf.Tensor, max_pixels, max_frames):
    """(format index into FORMATS or len(FORMATS), height, width, frames, decoded pixels) of one
    encoded image, from its header; the frame walks stop once over `max_pixels` or `max_frames`."""
    padded = _padded(encoded)
    head, fmt = _head(padded), _format(padded)
    max_pixels, max_frames = tf.cast(max_pixels, tf.int64), tf.cast(max_frames, tf.int64)

    def still(height, width):
        return height, width, tf.constant(1, tf.int64), height * width

    def jpeg():
        shape = tf.cast(tf.image.extract_jpeg_shape(encoded), tf.int64)
        return still(shape[0], shape[1])

    def bmp():
        core = _le(head, 14, 4) == 12  # BITMAPCOREHEADER: 16-bit sizes
        width = tf.where(core, _le(head, 18, 2), _le(head, 18, 4))
        height = tf.where(core, _le(head, 20, 2), _le(head, 22, 4))
        height = tf.where(height >= 2**31, 2**32 - height, height)  # negative: a top-down bitmap
        return still(height, width)

    branches = [
        jpeg,
        lambda: still(_be(head, 20, 4), _be(head, 16, 4)),
        lambda: _gif(encoded, head, max_pixels, max_frames),
        bmp,
        lambda: _webp(encoded, padded, head, max_pixels, max_frames),
        lambda: still(tf.constant(0, tf.int64), tf.constant(0, tf.int64)),
    ]
    return (fmt, *tf.switch_case(fmt, branches))


def problem(encoded: tf.Tensor, index, max_pixels, max_frames) -> tuple:
    """(decoded pixels, message) of image `index` (its position in the request): the message names the
    image, its size and the limit when its format is unknown or it is over `max_pixels` decoded pixels
    or `max_frames` frames, and is empty when the image is within the budget."""
    fmt, height, width, frames, pixels = image_size(encoded, max_pixels, max_frames)
    max_pixels, max_frames = tf.cast(max_pixels, tf.int64), tf.cast(max_frames, tf.int64)
    text = tf.strings.as_string
    image = tf.strings.join(["image ", text(index), ": "])
    still = tf.strings.join(
        [tf.gather(tf.constant(FORMATS + ("?",)), fmt), " of ", text(width), " x ", text(height), " pixels"]
    )
    size = tf.where(frames > 1, tf.strings.join([still, " x ", text(frames), " frames"]), still)
    unknown = tf.strings.join([image, "not a JPEG, PNG, GIF, BMP or WebP image (unknown signature)"])
    too_many_frames = tf.strings.join(
        [
            image,
            still,
            " has over ",
            text(max_frames),
            " frames, the model limit (export.max_image_frames); send one frame",
        ]
    )
    too_large = tf.strings.join(
        [
            image,
            size,
            " decodes to ",
            text(pixels),
            " pixels, over the model limit of ",
            text(max_pixels),
            " (export.max_image_pixels); send a smaller image",
        ]
    )
    message = tf.where(
        fmt == _UNKNOWN,
        unknown,
        tf.where(frames > max_frames, too_many_frames, tf.where(pixels > max_pixels, too_large, "")),
    )
    return pixels, message


def check(encoded: tf.Tensor, index, max_pixels, max_frames) -> tf.Tensor:
    """The decoded pixels of image `index`, or InvalidArgument with `problem`'s message: what the
    signatures run before decoding."""
    pixels, message = problem(encoded, index, max_pixels, max_frames)
    with tf.control_dependencies([tf.debugging.Assert(tf.equal(message, ""), [message], summarize=1)]):
        return tf.identity(pixels)


def problems(encoded: tf.Tensor, max_pixels, max_frames) -> tuple:
    """([batch] decoded pixels, [batch] messages, empty where fine) of a batch of encoded images.

    What `pipeline.serve` runs before admitting a request: it reports instead of raising, because
    TensorFlow keeps about 1 KB for every error a function call raises (measured: 10.4-11.3 MB per
    10,000 refused bombs, nothing for accepted images), which a stream of hostile requests turns into
    steady growth."""
    return tf.map_fn(
        lambda item: problem(item[0], item[1], max_pixels, max_frames),
        (encoded, tf.range(tf.size(encoded, out_type=tf.int64))),
        fn_output_signature=(tf.int64, tf.string),
    )
