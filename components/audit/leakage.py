"""Near-duplicates across splits: the same picture in train and test, re-encoded or resized.

The ingest removes byte-identical files (sha256) but a re-saved JPEG, a resized copy or a
screenshot of the same photo passes it. Such a test image is answered from memory, so the test
accuracy overstates what the model does on new images. Each val/test image's nearest train image
by cosine similarity of the unit embeddings is compared with the threshold.

Two searches give that nearest image. Exact: every query against every train row, in chunks
(memory bounded by the chunk, time O(queries x train): 4 x 10^8 dot products at 50,000 images,
seconds; 1.6 x 10^11 at 1,000,000, hours). Approximate, above `exact_pairs_limit` query-train
pairs: faiss's inverted-file index (`IndexIVFFlat`, inner product): k-means cells over the train
rows, each query compared only with the rows of its `PROBES` nearest cells. A near-copy sits next to
its original, so it is almost always in the query's own cell; time O(n x sqrt(n)) instead of n^2.
Both paths return the same (index, similarity) arrays, and the tests hold both to the planted
copies.
"""

import math

import numpy as np

PROBES = 16


def nearest(query: np.ndarray, reference: np.ndarray, chunk: int = 1024) -> tuple:
    """(index of the nearest reference row, its cosine similarity) for every query row (unit rows): exact."""
    if not len(query) or not len(reference):
        return np.zeros(len(query), np.int64), np.full(len(query), -1.0, np.float32)
    found, similarity = [], []
    for start in range(0, len(query), chunk):
        scores = query[start : start + chunk] @ reference.T
        best = scores.argmax(axis=1)
        found.append(best)
        similarity.append(scores[np.arange(len(best)), best])
    return np.concatenate(found), np.concatenate(similarity)


def nearest_approximate(query: np.ndarray, reference: np.ndarray, seed: int = 0) -> tuple:
    """What `nearest` returns, from a faiss inverted-file index (cells: about 4 sqrt(n) train rows each)."""
    import faiss

    if not len(query) or not len(reference):
        return nearest(query, reference)
    reference = np.ascontiguousarray(reference, np.float32)
    cells = max(1, min(int(4 * math.sqrt(len(reference))), len(reference) // 39))  # faiss wants 39 rows a cell
    quantizer = faiss.IndexFlatIP(reference.shape[1])
    index = faiss.IndexIVFFlat(quantizer, reference.shape[1], cells, faiss.METRIC_INNER_PRODUCT)
    index.cp.seed = seed
    sample = np.random.default_rng(seed).permutation(len(reference))[: 256 * cells]
    index.train(reference[sample])
    index.add(reference)
    index.nprobe = min(PROBES, cells)
    similarity, found = index.search(np.ascontiguousarray(query, np.float32), 1)
    missing = found[:, 0] < 0  # no train row in the probed cells: no near-copy either
    return np.where(missing, 0, found[:, 0]).astype(np.int64), np.where(missing, -1.0, similarity[:, 0])


def search(query: np.ndarray, reference: np.ndarray, method: str, exact_pairs_limit: int) -> tuple:
    """`nearest` or `nearest_approximate` as `method` ("exact", "approximate" or "auto": exact while the
    query-train pairs are at most `exact_pairs_limit`)."""
    approximate = method == "approximate" or (method == "auto" and len(query) * len(reference) > exact_pairs_limit)
    return (nearest_approximate if approximate else nearest)(query, reference)
