"""Near-duplicates across splits: the same picture in train and test, re-encoded or resized.

The ingest removes byte-identical files (sha256) but a re-saved JPEG, a resized copy or a
screenshot of the same photo passes it. Such a test image is answered from memory, so the test
accuracy overstates what the model does on new images. Each val/test image's nearest train image
by cosine similarity of the unit embeddings is compared with the threshold.
"""
import numpy as np


def nearest(query: np.ndarray, reference: np.ndarray, chunk: int = 1024) -> tuple:
    """(index of the nearest reference row, its cosine similarity) for every query row (unit rows)."""
    if not len(query) or not len(reference):
        return np.zeros(len(query), np.int64), np.full(len(query), -1.0, np.float32)
    found, similarity = [], []
    for start in range(0, len(query), chunk):
        scores = query[start:start + chunk] @ reference.T
        best = scores.argmax(axis=1)
        found.append(best)
        similarity.append(scores[np.arange(len(best)), best])
    return np.concatenate(found), np.concatenate(similarity)
