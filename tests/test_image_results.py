"""Per-image results kept across runs (components/common/image_results.py): found again by image and
computation, never mixed between computations, safe against damaged segments, bounded in size."""

import json
import os

import numpy as np

from components.common.image_results import ABOUT, ImageResults

SHAS = [f"{i:064x}" for i in range(5)]


def test_results_are_found_again_by_image_and_by_what_computed_them(tmp_path):
    first = ImageResults(str(tmp_path), {"model": "a"})
    first.add(SHAS[:3], probabilities=np.eye(3, dtype=np.float32), grid=np.arange(6).reshape(3, 2))
    again = ImageResults(str(tmp_path), {"model": "a"})  # another run, the same computation
    found = again.lookup(SHAS)
    assert sorted(found) == SHAS[:3]
    np.testing.assert_array_equal(found[SHAS[1]]["probabilities"], [0, 1, 0])
    np.testing.assert_array_equal(found[SHAS[2]]["grid"], [4, 5])
    assert ImageResults(str(tmp_path), {"model": "b"}).lookup(SHAS) == {}  # another model: nothing reused
    again.add(SHAS[3:], probabilities=np.ones((2, 3), np.float32), grid=np.zeros((2, 2), int))
    assert sorted(ImageResults(str(tmp_path), {"model": "a"}).lookup(SHAS)) == SHAS


def test_a_folder_whose_about_differs_is_neither_read_nor_written(tmp_path):
    kept = ImageResults(str(tmp_path), {"model": "a"})
    kept.add(SHAS[:1], probabilities=np.ones((1, 2)))
    with open(os.path.join(kept.dir, ABOUT), "w") as f:  # as a digest collision would leave it
        json.dump({"model": "something else"}, f)
    other = ImageResults(str(tmp_path), {"model": "a"})
    assert other.lookup(SHAS) == {}
    other.add(SHAS[1:2], probabilities=np.ones((1, 2)))
    assert len([n for n in os.listdir(kept.dir) if n.endswith(".npz")]) == 1


def test_a_damaged_segment_is_dropped_and_a_half_written_one_is_never_seen(tmp_path):
    kept = ImageResults(str(tmp_path), {"model": "a"})
    kept.add(SHAS[:2], probabilities=np.ones((2, 2)))
    kept.add(SHAS[2:4], probabilities=np.full((2, 2), 2.0))
    segments = sorted(n for n in os.listdir(kept.dir) if n.endswith(".npz"))
    damaged = os.path.join(kept.dir, segments[0])
    data = open(damaged, "rb").read()
    with open(damaged, "wb") as f:
        f.write(data[: len(data) // 2])  # cut short, as a full disk would
    with open(os.path.join(kept.dir, ".tmp-0123"), "wb") as f:  # a writer killed before its rename
        f.write(data[:100])
    found = ImageResults(str(tmp_path), {"model": "a"}).lookup(SHAS)
    survivor = sorted(found)
    assert len(survivor) == 2 and not os.path.exists(damaged)
    assert all(found[s]["probabilities"].shape == (2,) for s in survivor)


def test_the_cache_is_bounded_least_recently_used_first(tmp_path):
    big = np.zeros((5, 20_000), np.float32)  # about 400 kB a computation
    for name in ("old", "used", "new"):
        ImageResults(str(tmp_path), {"model": name}, max_bytes=10**9).add(SHAS, v=big)
        os.utime(os.path.join(ImageResults(str(tmp_path), {"model": name}).dir, ABOUT), (1e9, 1e9 + len(name)))
    ImageResults(str(tmp_path), {"model": "used"})  # touched: now the most recently used but one
    ImageResults(str(tmp_path), {"model": "latest"}, max_bytes=900_000).add(SHAS, v=big)
    left = {json.load(open(os.path.join(tmp_path, d, ABOUT)))["model"] for d in os.listdir(tmp_path)}
    assert left == {"used", "latest"}
