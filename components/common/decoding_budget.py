"""The decoding budget's defaults, without TensorFlow: the export config reads them when it is only
validated, the signatures (components/common/image_limits.py) and `pipeline.serve` when they run."""

MAX_PIXELS = 12_500_000  # export.max_image_pixels: a 12 MP phone photo fits
MAX_FRAMES = 100  # export.max_image_frames
# Peak memory of decoding and resizing one pixel, measured with TensorFlow 2.21 on 3000 x 4000 images:
# PNG 15.9 bytes, JPEG 12.3 (the uint8 decode, its float32 copy, the antialiased resize).
BYTES_PER_PIXEL = 16
