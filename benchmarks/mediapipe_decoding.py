"""MediaPipe Tasks' own image decoding against the model's normalisation, on real photos in the
encodings cameras and tools write (tests/camera_encodings.py).

    python -m benchmarks.mediapipe_decoding [--photos 5] [--out benchmarks/mediapipe_decoding_results.json]

An app on a device hands MediaPipe Tasks' `ImageClassifier` an `mp.Image`; `mp.Image.create_from_file`
is MediaPipe's decoder. The served formats decode inside the model by the ingest's rules
(`image_ops.decode_image`: EXIF orientation, transparency on white, ...), which a TFLite file
cannot do, so whatever MediaPipe's decoder does differently reaches the model. For every catalogue
encoding of each photo this records what MediaPipe returns (shape, channels) and, as RGB, the max
and mean absolute difference (0-255) from `decode_image`, or why they cannot be compared (another
shape: the orientation was not applied; a refusal). The RGB of a 4-channel answer is its colour
channels as stored, which is what a classifier that drops alpha receives. Needs mediapipe
(`pip install --no-deps mediapipe==1.2.2 opencv-contrib-python`, as .ci/run does).
"""

import argparse
import json
import os
import platform
import tempfile
import time

import numpy as np
from PIL import Image

from benchmarks.shared import SIGN_DIGITS


def _mediapipe_rgb(path: str):
    """(RGB uint8 array or None, what MediaPipe returned) for one file."""
    import mediapipe as mp

    try:
        image = mp.Image.create_from_file(path)
    except Exception as error:  # noqa: BLE001 (recorded: a refusal is a result)
        return None, f"refused: {type(error).__name__}: {str(error).splitlines()[0][:120]}"
    pixels = np.array(image.numpy_view())
    described = f"{mp.ImageFormat(image.image_format).name} {list(pixels.shape)} {pixels.dtype}"
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    if pixels.dtype != np.uint8:  # 16-bit formats: MediaPipe keeps them; the model takes 8 bits
        pixels = np.rint(pixels / 257.0).astype(np.uint8)
    channels = pixels.shape[-1]
    rgb = np.repeat(pixels[..., :1], 3, axis=-1) if channels in (1, 2) else pixels[..., :3]
    return rgb, described


def measure(photos: int) -> dict:
    import tensorflow as tf

    from components.common.image_ops import decode_image
    from components.common.normalisation import served_format
    from tests.camera_encodings import catalogue

    files = sorted(os.path.join(r, f) for r, _, fs in os.walk(SIGN_DIGITS) for f in fs if f.endswith(".JPG"))
    rows: dict = {}
    with tempfile.TemporaryDirectory() as work:
        for i in range(photos):
            photo = Image.open(files[(i * 211) % len(files)])
            for name, data, _ in catalogue(photo):
                path = os.path.join(work, name)
                with open(path, "wb") as f:
                    f.write(data)
                ours = decode_image(tf.constant(data)).numpy() if served_format(data) else None
                theirs, described = _mediapipe_rgb(path)
                row = rows.setdefault(
                    name, {"mediapipe_returns": described, "max_abs": 0, "mean_abs": [], "notes": set()}
                )
                if ours is None:
                    row["notes"].add("not a served format: the model's decoder refuses it (400 / exit 3)")
                elif theirs is None:
                    row["notes"].add(described)
                elif theirs.shape != ours.shape:
                    row["notes"].add(
                        f"shape {list(theirs.shape)} vs the model's {list(ours.shape)}: orientation not applied"
                    )
                else:
                    difference = np.abs(theirs.astype(np.int16) - ours.astype(np.int16))
                    row["max_abs"] = max(row["max_abs"], int(difference.max()))
                    row["mean_abs"].append(float(difference.mean()))
    for row in rows.values():
        row["mean_abs"] = round(float(np.mean(row["mean_abs"])), 3) if row["mean_abs"] else None
        row["max_abs"] = row["max_abs"] if row["mean_abs"] is not None else None
        row["notes"] = sorted(row["notes"])
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=5, help="real photos, each in every encoding")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "mediapipe_decoding_results.json"))
    args = parser.parse_args(argv)
    import mediapipe

    started = time.time()
    rows = measure(args.photos)
    same = sorted(n for n, r in rows.items() if r["max_abs"] is not None and r["max_abs"] <= 2)
    result = {
        "what": "mp.Image.create_from_file against the model's in-graph decoding (image_ops.decode_image), per encoding",
        "command": f"python -m benchmarks.mediapipe_decoding --photos {args.photos}",
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}, Python {platform.python_version()}",
        "mediapipe": mediapipe.__version__,
        "photos": args.photos,
        "seconds": round(time.time() - started, 1),
        "within_2_levels": same,
        "differ": sorted(set(rows) - set(same)),
        "encodings": rows,
    }
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    print(json.dumps({k: result[k] for k in ("within_2_levels", "differ")}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
