"""The seeded content rank: an order of images that depends on their bytes, not on paths or workers.

The ingest fills each class's splits in this order, and `train.train_fraction` keeps each class's
first round(F * n) train images in it, so both are stable when files move or workers change, and
the images a small fraction keeps are also kept by any larger one.
"""

import hashlib


def seeded_rank(sha256: str, seed: int) -> str:
    """The order key of an image: a hash of its content's sha256 and the seed."""
    return hashlib.sha256(f"{seed}:{sha256}".encode()).hexdigest()


def stratified_subset(rows, fraction: float, split: str = "train", seed: int = 0) -> frozenset:
    """sha256 of the `split` images to keep: round(fraction * n) per class, at least 1, by seeded rank.

    rows: manifest rows (dicts with split, label, sha256), as `schemas.artifacts.Examples.manifest()`.
    """
    by_class = {}
    for row in rows:
        if row["split"] == split:
            by_class.setdefault(row["label"], []).append(row["sha256"])
    keep = set()
    for shas in by_class.values():
        n = max(1, round(fraction * len(shas)))
        keep.update(sorted(shas, key=lambda s: seeded_rank(s, seed))[:n])
    return frozenset(keep)
