"""Photo-like JPEGs for the ingest benchmark: they compress and decode like camera photos.

Flat synthetic images compress to a few KB and decode far faster than photos, which would make
any per-file overhead look worse (or a decoder look better) than on real data. These have what
photos have: smooth lighting gradients, a few objects with soft edges, and sensor-like noise,
so a 500x375 file weighs about 30-60 KB at quality 85 and takes as long to decode as a photo.

Each image depends only on (seed, index), so the set is the same whatever the process count.
Noise is cropped from one pre-drawn tile per process (drawing fresh Gaussian noise for every
image would dominate the time).

    python -m benchmarks.photos DEST N [--classes 10] [--seed 0]
"""

import argparse
import functools
import json
import multiprocessing
import os
import time

import numpy as np
from PIL import Image, ImageDraw

QUALITY = 85
_NOISE_TILE = 1024
_noise_cache = {}


def _noise(seed: int) -> np.ndarray:
    """A per-process tile of sensor-like noise (int16, 3 channels), the same for a given seed."""
    if seed not in _noise_cache:
        rng = np.random.default_rng([seed, 0x5EED])
        _noise_cache[seed] = np.rint(rng.normal(0, 9, size=(_NOISE_TILE, _NOISE_TILE, 3))).astype(np.int16)
    return _noise_cache[seed]


def photo(index: int, size=(500, 375), seed: int = 0, label: int = 0) -> Image.Image:
    """Draw photo `index`: a lit background, a few soft-edged objects tinted by `label`, noise."""
    width, height = size
    rng = np.random.default_rng([seed, index])
    # Drawn at half size and upsampled: smooth lighting and soft object edges, without a slow blur.
    small = (max(8, width // 2), max(8, height // 2))
    grid = rng.integers(30, 226, size=(3, 4, 3), dtype=np.uint8)  # lighting: 4x3 random colours
    image = Image.fromarray(grid).resize(small, Image.Resampling.BILINEAR)
    draw = ImageDraw.Draw(image)
    tint = np.array([(label * 73) % 256, (label * 151) % 256, (label * 199) % 256])
    for _ in range(int(rng.integers(3, 7))):
        x0, y0 = rng.integers(0, small[0] - 4), rng.integers(0, small[1] - 4)
        w, h = rng.integers(4, small[0] // 2), rng.integers(4, small[1] // 2)
        colour = tuple(int(c) for c in (rng.integers(0, 256, 3) + tint) // 2)
        box = (int(x0), int(y0), int(min(small[0] - 1, x0 + w)), int(min(small[1] - 1, y0 + h)))
        if rng.random() < 0.5:
            draw.ellipse(box, fill=colour)
        else:
            draw.rectangle(box, fill=colour)
    image = image.resize(size, Image.Resampling.BILINEAR)
    tile = _noise(seed)
    oy, ox = rng.integers(0, _NOISE_TILE - height), rng.integers(0, _NOISE_TILE - width)
    pixels = np.asarray(image, dtype=np.int16) + tile[oy : oy + height, ox : ox + width]
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _write_one(index: int, dest_dir: str, classes: int, size, seed: int) -> int:
    label = index % classes
    path = os.path.join(dest_dir, f"class_{label:02d}", f"photo_{index:06d}.jpg")
    photo(index, size, seed, label).save(path, format="JPEG", quality=QUALITY)
    return os.path.getsize(path)


def generate_photos(
    dest_dir: str, n: int, classes: int = 10, size=(500, 375), seed: int = 0, processes: int = None
) -> str:
    """Write `n` photo-like JPEGs into `dest_dir/class_XX/` (round-robin over classes); return dest_dir.

    Deterministic: the same (n, classes, size, seed) always gives the same files. Runs on
    `processes` workers (default: every CPU) because a 20k-image set takes minutes on one.
    """
    for label in range(classes):
        os.makedirs(os.path.join(dest_dir, f"class_{label:02d}"), exist_ok=True)
    work = functools.partial(_write_one, dest_dir=dest_dir, classes=classes, size=tuple(size), seed=seed)
    processes = processes or os.cpu_count() or 1
    if processes == 1 or n < 64:
        for i in range(n):
            work(i)
    else:
        with multiprocessing.get_context("spawn").Pool(processes) as pool:
            for _ in pool.imap_unordered(work, range(n), chunksize=64):
                pass
    return dest_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dest_dir")
    parser.add_argument("n", type=int)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    start = time.perf_counter()
    generate_photos(args.dest_dir, args.n, args.classes, seed=args.seed)
    seconds = time.perf_counter() - start
    sizes = [e.stat().st_size for d in os.scandir(args.dest_dir) if d.is_dir() for e in os.scandir(d.path)]
    print(
        json.dumps(
            {
                "images": len(sizes),
                "seconds": round(seconds, 2),
                "images_per_s": round(len(sizes) / seconds, 1),
                "mean_kb": round(sum(sizes) / len(sizes) / 1024, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
