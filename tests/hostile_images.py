"""Encoded images a hostile client sends: small files that declare enormous decoded sizes, in every
format the serving signatures take, and animations with many frames. Each is a well-formed file a
decoder would really try to decode (the PNG bombs are complete, valid PNGs), so a test that
serves one shows the guard refusing it, not the decoder failing on it."""

import functools
import io
import struct
import zlib

import numpy as np
from PIL import Image


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@functools.lru_cache(maxsize=None)
def png_bomb(width: int, height: int) -> bytes:
    """A valid 1-bit greyscale PNG of `width` x `height` black pixels (decoded to RGB by the signature:
    3 bytes a pixel before the float copy); 30,000 x 30,000 is about 110 KB."""
    row = b"\0" * (1 + (width + 7) // 8)
    compressor = zlib.compressobj(9)
    block = row * 256
    idat = b"".join(compressor.compress(block) for _ in range(height // 256))
    idat += compressor.compress(row * (height % 256)) + compressor.flush()
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
        + _chunk(b"IDAT", idat)
        + _chunk(b"IEND", b"")
    )


def encoded(fmt: str, width: int = 40, height: int = 30, seed: int = 0, **save) -> bytes:
    """A small real image in PIL format `fmt` (JPEG, PNG, GIF, BMP, WEBP)."""
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, fmt, **save)
    return out.getvalue()


def animation(fmt: str, frames: int, width: int = 16, height: int = 16) -> bytes:
    """A GIF or WebP of `frames` distinct frames."""
    images = [Image.fromarray(np.full((height, width, 3), (i * 37) % 256, np.uint8)) for i in range(frames)]
    out = io.BytesIO()
    images[0].save(out, fmt, save_all=True, append_images=images[1:], duration=20, loop=0)
    return out.getvalue()


def jpeg_bomb(width: int = 65000, height: int = 65000) -> bytes:
    """A real small JPEG whose frame header (SOF0) is rewritten to declare `width` x `height`."""
    data = bytearray(encoded("JPEG", 16, 16))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def gif_bomb(width: int = 30000, height: int = 30000) -> bytes:
    """A one-frame 1 x 1 GIF whose logical screen is `width` x `height` (decoded at the screen's size)."""
    data = bytearray(encoded("GIF", 1, 1))
    data[6:10] = struct.pack("<HH", width, height)
    return bytes(data)


def bmp_bomb(width: int = 30000, height: int = 30000) -> bytes:
    data = bytearray(encoded("BMP", 4, 4))
    data[18:26] = struct.pack("<ii", width, -height)  # top-down: a negative height
    return bytes(data)


def webp_bomb(width: int = 16000, height: int = 16000) -> bytes:
    """An extended-format (VP8X) WebP declaring a `width` x `height` canvas."""
    vp8x = struct.pack("<B3x", 0) + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    body = encoded("WEBP", 4, 4)[12:]  # the VP8 chunk of a real image
    chunks = b"VP8X" + struct.pack("<I", len(vp8x)) + vp8x + body
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WEBP" + chunks
