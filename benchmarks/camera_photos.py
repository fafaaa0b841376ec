"""Camera-size photos: what the DCT-scaled ingest decode saves, and what the in-graph normalisation costs.

    python -m benchmarks.camera_photos [--photos 60] [--side 3000] [--out benchmarks/camera_results.json]

Generates camera-size JPEGs (3000 x 2000 by default, 3:2 like a phone's 6 MP mode) from the real
sign-language photos (upscaled, with sensor-like noise so that they compress like photos, quality 92),
a quarter of them stored rotated with the EXIF orientation tag that makes them upright, as phones
write portrait photos. Then measures, each against its baseline in the same run:

  ingest_decode: `components.ingest.decode.decode_and_normalise(max_side=512)` per photo, one thread,
    with libjpeg's DCT scaling (`_draft`, the default) against the full decode it replaced
    (`_draft` switched off for the baseline): photos/s and the ratio; plus the mean absolute pixel
    difference between the two outputs; and, per photo, the record (512 px) against the camera file
    both through the serving preprocessing to 96 px: what the trainer sees against what a client sends.
  serving_decode: the serving signatures' preprocessing (`image_ops.decode_and_resize` to 96 px, now
    the normalising decoder) against the plain `tf.io.decode_image` + resize it replaced, per image,
    on the camera photos and on 100 px photos: ms per image and the ratio.
  rotated_agree: for each rotated photo, whether the serving preprocessing of the file as the camera
    wrote it equals that of an upright copy (max abs difference, 0-255), before (plain decode) and now.
"""

import argparse
import io
import json
import os
import platform
import time

import numpy as np
from PIL import Image

from benchmarks.shared import SIGN_DIGITS


def _camera_photos(count: int, side: int) -> list:
    """[(camera file bytes, upright copy bytes, rotated?)] from the real photos."""
    from tests.camera_encodings import stored_rotated

    rng = np.random.default_rng(0)
    files = sorted(os.path.join(r, f) for r, _, fs in os.walk(SIGN_DIGITS) for f in fs if f.endswith(".JPG"))
    photos = []
    for i in range(count):
        small = Image.open(files[(i * 37) % len(files)]).convert("RGB")
        big = np.asarray(small.resize((side, side * 2 // 3), Image.Resampling.BICUBIC), np.float32)
        noisy = Image.fromarray(np.clip(big + rng.normal(0, 6, big.shape), 0, 255).astype(np.uint8))
        upright = io.BytesIO()
        noisy.save(upright, format="JPEG", quality=92)
        rotated = i % 4 == 0
        camera = stored_rotated(noisy, (6, 8, 3)[i // 4 % 3], quality=92) if rotated else upright.getvalue()
        photos.append((camera, upright.getvalue(), rotated))
    return photos


def _ingest_decode(photos: list) -> dict:
    from components.ingest import decode

    def run(draft: bool):
        original = decode._draft
        if not draft:
            decode._draft = lambda image, fmt, max_side: None
        try:
            start = time.perf_counter()
            out = [decode.decode_and_normalise(camera, max_side=512) for camera, _, _ in photos]
            return time.perf_counter() - start, out
        finally:
            decode._draft = original

    full_s, full = run(False)
    dct_s, dct = run(True)
    diffs = [
        np.abs(
            np.asarray(Image.open(io.BytesIO(a.data)), np.float32)
            - np.asarray(Image.open(io.BytesIO(b.data)), np.float32)
        ).mean()
        for a, b in zip(full, dct)
    ]
    return {
        "photos": len(photos),
        "record_vs_camera_file_at_96px": _record_vs_file(photos, dct),
        "full_decode_photos_per_s": round(len(photos) / full_s, 2),
        "dct_scaled_photos_per_s": round(len(photos) / dct_s, 2),
        "speedup": round(full_s / dct_s, 2),
        "mean_abs_pixel_difference": round(float(np.mean(diffs)), 3),
        "stored_bytes_per_photo": int(np.mean([len(d.data) for d in dct])),
        "camera_bytes_per_photo": int(np.mean([len(c) for c, _, _ in photos])),
    }


def _record_vs_file(photos: list, records: list) -> dict:
    """What the trainer sees (the 512 px record, resized to 96) against what the server sees (the camera
    file, decoded and resized to 96 in the graph): mean and max abs difference, 0-255."""
    import tensorflow as tf

    from components.common.image_ops import decode_and_resize

    pixels = tf.function(lambda b: decode_and_resize(b, (96, 96)))
    diffs = [
        np.abs(pixels(tf.constant(r.data)).numpy() - pixels(tf.constant(c)).numpy())
        for (c, _, _), r in zip(photos, records)
    ]
    return {
        "mean_abs": round(float(np.mean([d.mean() for d in diffs])), 3),
        "max_abs": round(float(max(d.max() for d in diffs)), 2),
    }


def _serving_decode(photos: list) -> dict:
    import tensorflow as tf

    from components.common.image_ops import decode_and_resize, resize_for_model

    size = (96, 96)
    now = tf.function(lambda b: decode_and_resize(b, size))
    before = tf.function(lambda b: resize_for_model(tf.io.decode_image(b, channels=3, expand_animations=False), size))
    small = [
        open(os.path.join(SIGN_DIGITS, "3", f), "rb").read()
        for f in sorted(os.listdir(os.path.join(SIGN_DIGITS, "3")))[:50]
    ]
    result = {}
    for name, images in (("camera_3000x2000", [c for c, _, _ in photos]), ("photo_100x100", small)):
        timings = {}
        for label, fn in (("before", before), ("now", now)):
            fn(tf.constant(images[0]))  # trace once
            start = time.perf_counter()
            for image in images:
                fn(tf.constant(image))
            timings[label] = (time.perf_counter() - start) / len(images) * 1000
        result[name] = {
            "before_ms_per_image": round(timings["before"], 2),
            "now_ms_per_image": round(timings["now"], 2),
            "ratio": round(timings["now"] / timings["before"], 3),
        }
    rotated = [(c, u) for c, u, r in photos if r]
    for label, fn in (("before", before), ("now", now)):
        worst = [float(np.abs(fn(tf.constant(c)).numpy() - fn(tf.constant(u)).numpy()).max()) for c, u in rotated]
        result[f"rotated_vs_upright_max_abs_{label}"] = round(max(worst), 2)
        result[f"rotated_same_as_upright_{label}"] = f"{sum(w <= 2 for w in worst)}/{len(worst)}"
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.camera_photos", description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=60)
    parser.add_argument("--side", type=int, default=3000)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "camera_results.json"))
    args = parser.parse_args(argv)
    photos = _camera_photos(args.photos, args.side)
    results = json.load(open(args.out)) if os.path.exists(args.out) else {}  # keeps sections measured by hand
    results |= {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "command": f"python -m benchmarks.camera_photos --photos {args.photos} --side {args.side}",
        "ingest_decode": _ingest_decode(photos),
        "serving_decode": _serving_decode(photos),
    }
    print(json.dumps(results, indent=2))
    with open(args.out, "w") as f:
        json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
