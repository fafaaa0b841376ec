"""Split assignment: exact per-class stratification, and stability across added/removed images."""

import hashlib
import random

from components.ingest import splits

FRACTIONS = {"train": 0.8, "val": 0.1, "test": 0.1}
ORDER = ("train", "val", "test")


def shas(n, start=0):
    return [hashlib.sha256(str(i).encode()).hexdigest() for i in range(start, start + n)]


def counts(split_of):
    return {s: sum(1 for v in split_of.values() if v == s) for s in ORDER}


def test_fresh_class_is_within_one_of_its_targets_and_in_every_split():
    for n in range(3, 260):
        got = counts(splits.assign_class(shas(n), {}, FRACTIONS, ORDER, seed=0))
        assert sum(got.values()) == n
        assert all(got[s] >= 1 for s in ORDER), (n, got)
        if n >= 10:  # below 10, "one image per split" outranks "within 1 of 10%"
            for s in ORDER:
                assert abs(got[s] - FRACTIONS[s] * n) <= 1, (n, got)


def test_tiny_classes_fill_train_first():
    assert counts(splits.assign_class(shas(1), {}, FRACTIONS, ORDER, 0)) == {"train": 1, "val": 0, "test": 0}
    assert counts(splits.assign_class(shas(2), {}, FRACTIONS, ORDER, 0))["train"] == 2


def test_assignment_depends_on_content_and_seed_not_on_order():
    images = shas(100)
    shuffled = images[:]
    random.Random(3).shuffle(shuffled)
    first = splits.assign_class(images, {}, FRACTIONS, ORDER, seed=0)
    assert splits.assign_class(shuffled, {}, FRACTIONS, ORDER, seed=0) == first
    assert splits.assign_class(images, {}, FRACTIONS, ORDER, seed=1) != first


def test_added_and_removed_images_never_move_an_assigned_image():
    first = splits.assign_class(shas(200), {}, FRACTIONS, ORDER, 0)
    kept_old = shas(200)[20:]  # 20 removed
    second = splits.assign_class(kept_old + shas(50, start=1000), first, FRACTIONS, ORDER, 0)
    assert all(second[sha] == first[sha] for sha in kept_old)
    got = counts(second)
    assert sum(got.values()) == 230
    for s in ORDER:  # the new images filled the deficits, so the class is back on target
        assert abs(got[s] - FRACTIONS[s] * 230) <= 1, got


def test_a_split_left_over_target_by_removals_keeps_its_images_and_gets_no_new_ones():
    first = splits.assign_class(shas(100), {}, FRACTIONS, ORDER, 0)
    # 70 of the 80 training images are removed: val and test (10 each) are now above their targets.
    survivors = [sha for sha, s in first.items() if s != "train"] + [sha for sha, s in first.items() if s == "train"][
        :10
    ]
    second = splits.assign_class(survivors + shas(5, start=500), first, FRACTIONS, ORDER, 0)
    assert all(second[sha] == first[sha] for sha in survivors)
    assert all(second[sha] == "train" for sha in shas(5, start=500))  # val/test are over target


def test_targets_use_largest_remainder():
    assert splits.targets(204, FRACTIONS, ORDER) == {"train": 163, "val": 21, "test": 20}
    assert splits.targets(3, FRACTIONS, ORDER) == {"train": 1, "val": 1, "test": 1}
    assert splits.targets(10, {"train": 0.5, "test": 0.5}, ("train", "test")) == {"train": 5, "test": 5}
