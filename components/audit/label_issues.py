"""Likely label errors: confident learning (cleanlab) on out-of-sample probabilities.

Why out-of-sample: a model scored on the images it was fitted to agrees with their labels, wrong
ones included. K-fold cross-validated logistic regression on the (label-blind) backbone
embeddings gives every image a probability from a model that never saw it, cheaply (seconds, no
image is decoded twice); cleanlab's `find_label_issues` then flags the images whose given label
is implausible under the per-class confidence thresholds it estimates (Northcutt et al. 2021),
ranked by normalized margin (the given label's probability minus the best other class's: an
image the other folds confidently place in another class comes first; on the sign-language test
this ranks moved images higher than self-confidence does).
"""
import numpy as np


def out_of_sample_probabilities(vectors: np.ndarray, labels: np.ndarray, folds: int, seed: int = 0) -> np.ndarray:
    from cleanlab.count import estimate_cv_predicted_probabilities
    from sklearn.linear_model import LogisticRegression

    folds = max(2, min(folds, int(np.bincount(labels).min())))  # stratified folds need that many per class
    return estimate_cv_predicted_probabilities(vectors, labels, clf=LogisticRegression(max_iter=2000, C=1.0),
                                               cv_n_folds=folds, seed=seed)


def ranked_issues(labels: np.ndarray, probabilities: np.ndarray) -> list:
    """Indices of the flagged images, most likely mislabelled first."""
    from cleanlab.filter import find_label_issues

    # n_jobs=1: by default cleanlab forks a multiprocessing.Pool (one process per core) from this
    # process, which has TensorFlow's thread pools running; a forked copy of a threaded process can
    # deadlock or die (a CI run printed a bare "Traceback" on the console from one). The pruning is
    # per class over a few thousand rows: milliseconds in one process.
    return [int(i) for i in find_label_issues(labels, probabilities, return_indices_ranked_by="normalized_margin",
                                              n_jobs=1)]
