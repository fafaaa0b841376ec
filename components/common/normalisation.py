"""The normalisation rules both decoders follow, without TensorFlow (the ingest's workers do not load it).

The ingest applies them with Pillow (components/ingest/decode.py), every serving path with
TensorFlow ops (components/common/camera_decode.py); tests/test_camera_encodings.py holds the two to
each other. Transparency goes on white because transparent images are drawn to be seen on light
pages (logos and product shots, dark on transparent, would vanish on black).
"""

BACKGROUND = (255, 255, 255)  # what transparency is composited on
EXIF_ORIENTATION_TAG = 0x0112
