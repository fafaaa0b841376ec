"""The label review queue: confident learning (cleanlab) on out-of-fold probabilities of a linear probe.

Why out-of-fold: a model scored on the images it was fitted to agrees with their labels, wrong
ones included. A K-fold cross-validated logistic regression on the (label-blind) embeddings gives
every image a probability from a probe that never saw it; cleanlab's `find_label_issues` then
ranks the images whose given label is implausible under the per-class confidence thresholds it
estimates (Northcutt et al. 2021), by normalized margin (the given label's probability minus the
best other class's; on the sign-language test this ranks moved images higher than
self-confidence does).

Why the queue is not called "label errors" on every folder: confident learning flags the images
the probe cannot place. With a strong probe those are mostly wrong labels; with a weak one they are
mostly hard images (a 60%-accurate probe on a clean 500-image folder flagged 19% of it). So the
probe's own out-of-fold accuracy is measured and reported, the number of label errors the data
holds is estimated separately (cleanlab's `num_label_issues`, the confident joint's off-diagonal),
and below `min_probe_accuracy` the queue is presented as the hardest images with no error claimed.

Cost: the pooled embeddings are projected on their top `PROBE_DIMENSIONS` principal components
before the probe (same accuracy and calibration as the full 1280 dimensions on the sign-language
folder, 0.92 either way, at a tenth of the solver's work), and above `MANY_EXAMPLES` images the
probe uses at most 3 folds (each fit still sees two thirds of the data). Time grows linearly with
the number of images; memory holds the [n, 128] projection and [n, classes] probabilities.
"""

import dataclasses

import numpy as np

PROBE_DIMENSIONS = 128
MANY_EXAMPLES = 20_000


@dataclasses.dataclass(frozen=True)
class Probe:
    """Out-of-fold probabilities of every image and what they say about the labels."""

    probabilities: np.ndarray  # [n, classes]
    accuracy: float  # out-of-fold accuracy against the given labels
    folds: int
    estimated_errors: int  # label errors the data is estimated to hold (cleanlab's confident joint)


def principal_components(vectors: np.ndarray, dimensions: int = PROBE_DIMENSIONS) -> np.ndarray:
    """`vectors` centred and projected on their top `dimensions` principal components (float64)."""
    centered = vectors - vectors.mean(axis=0, dtype=np.float64).astype(vectors.dtype)
    if centered.shape[1] <= dimensions:
        return centered.astype(np.float64)
    values, axes = np.linalg.eigh((centered.T @ centered).astype(np.float64) / len(centered))
    top = axes[:, np.argsort(values)[::-1][:dimensions]].astype(centered.dtype)
    return (centered @ top).astype(np.float64)  # float32 products: [n, d] is never copied to float64


def probe(vectors: np.ndarray, labels: np.ndarray, folds: int, seed: int = 0) -> Probe:
    """Cross-validated logistic regression on the top principal components of `vectors`."""
    from cleanlab.count import num_label_issues
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    folds = min(folds, 3) if len(labels) > MANY_EXAMPLES else folds
    folds = max(2, min(folds, int(np.bincount(labels).min())))  # stratified folds need that many per class
    features = principal_components(vectors)
    probabilities = np.zeros((len(labels), int(labels.max()) + 1))
    for fit, held_out in StratifiedKFold(folds, shuffle=True, random_state=seed).split(features, labels):
        model = LogisticRegression(max_iter=1000, C=1.0).fit(features[fit], labels[fit])
        probabilities[np.ix_(held_out, model.classes_)] = model.predict_proba(features[held_out])
    accuracy = float(np.mean(probabilities.argmax(axis=1) == labels))
    estimated = int(num_label_issues(labels, probabilities, estimation_method="off_diagonal"))
    return Probe(probabilities, accuracy, folds, estimated)


def ranked_issues(labels: np.ndarray, probabilities: np.ndarray) -> list:
    """Indices of the flagged images, most likely mislabelled first."""
    from cleanlab.filter import find_label_issues

    # n_jobs=1: by default cleanlab forks a multiprocessing.Pool (one process per core) from this
    # process, which has TensorFlow's thread pools running; a forked copy of a threaded process can
    # deadlock or die (a CI run printed a bare "Traceback" on the console from one). The pruning is
    # per class over the rows: well under a second in one process even at 50,000 images.
    return [
        int(i) for i in find_label_issues(labels, probabilities, return_indices_ranked_by="normalized_margin", n_jobs=1)
    ]
