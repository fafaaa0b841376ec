"""The decoding budget's defaults, without TensorFlow: the export config reads them when it is only
validated, the signatures (components/common/image_limits.py) and `pipeline.serve` when they run."""

MAX_PIXELS = 12_500_000  # export.max_image_pixels: a 12 MP phone photo fits
MAX_FRAMES = 100  # export.max_image_frames
# Peak memory of decoding, normalising and resizing one pixel (components/common/image_ops.decode_and_resize),
# measured with TensorFlow 2.21 on 3000 x 4000 images: RGBA PNG composited on white 22.0 bytes, RGB PNG 13.5,
# JPEG 16.8 (the decode, the alpha compositing, the float32 copy, the antialiased resize).
BYTES_PER_PIXEL = 24
