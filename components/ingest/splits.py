"""Stratified and stable split assignment, computed on image metadata only (never on bytes).

Exact and stable together need memory, so the split of every image is remembered by content
(sha256) in the previous ingest's `manifest.csv`:

1. An image whose sha256 had a split in the previous manifest keeps it, whatever its path,
   so a test image can never become a training image in a later run.
2. Each class's target per split is computed for its *new* total with the largest-remainder
   method (so each split is within 1 image of `fraction * total`), and every split gets at least
   one image when the class has at least as many images as there are splits.
3. New images fill each split's deficit (target minus what it already holds), taken in the
   order of a seeded hash of their sha256: independent of file order, paths and worker count.

When removals leave a split above its target, nothing is moved out of it: the new images go to
the splits that are short, so that class stays off target until more images are added
(stability wins over exactness; docs/data.md says so).
"""

from typing import Dict, Iterable, List, Mapping, Sequence

from components.common.ranking import seeded_rank


def targets(total: int, fractions: Mapping[str, float], order: Sequence[str]) -> Dict[str, int]:
    """Per-split image counts for a class of `total` images (largest remainder, min 1 each)."""
    raw = {s: fractions[s] * total for s in order}
    counts = {s: int(raw[s]) for s in order}
    by_remainder = sorted(order, key=lambda s: (-(raw[s] - counts[s]), order.index(s)))
    for s in by_remainder[: total - sum(counts.values())]:
        counts[s] += 1
    if total >= len(order):
        for s in order:
            if counts[s] == 0:
                donor = max(order, key=lambda d: (counts[d], -order.index(d)))
                counts[donor] -= 1
                counts[s] = 1
    return counts


def _allocate(new: int, deficits: Dict[str, int], order: Sequence[str]) -> Dict[str, int]:
    """Share `new` images among splits in proportion to their deficits (largest remainder)."""
    total_deficit = sum(deficits.values())
    if total_deficit <= new:
        return dict(deficits)
    raw = {s: new * deficits[s] / total_deficit for s in order}
    counts = {s: int(raw[s]) for s in order}
    by_remainder = sorted(order, key=lambda s: (-(raw[s] - counts[s]), order.index(s)))
    for s in by_remainder[: new - sum(counts.values())]:
        counts[s] += 1
    return counts


def assign_class(
    shas: Iterable[str],
    previous: Mapping[str, str],
    fractions: Mapping[str, float],
    order: Sequence[str],
    seed: int,
) -> Dict[str, str]:
    """Split of every image (by sha256) of one class, given the previous sha256 -> split map."""
    shas = sorted(set(shas))
    split_of = {sha: previous[sha] for sha in shas if previous.get(sha) in order}
    new: List[str] = sorted((sha for sha in shas if sha not in split_of), key=lambda sha: seeded_rank(sha, seed))
    if not new:
        return split_of
    held = {s: 0 for s in order}
    for split in split_of.values():
        held[split] += 1
    goal = targets(len(shas), fractions, order)
    deficits = {s: max(0, goal[s] - held[s]) for s in order}
    quota = _allocate(len(new), deficits, order)
    position = 0
    for s in order:
        for sha in new[position : position + quota[s]]:
            split_of[sha] = s
        position += quota[s]
    return split_of
