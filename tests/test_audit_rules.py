"""The audit's rules without a model: config checks, the verdict, nearest neighbours, the two-stage copy test."""

import numpy as np
import pytest

from components.audit import AuditConfig
from components.audit.audit import AuditResult, _near_duplicates
from components.audit.leakage import nearest, nearest_approximate, search
from components.common.errors import UsageError


@pytest.mark.parametrize(
    "bad",
    [
        dict(folds=1),
        dict(leakage_similarity=0.0),
        dict(leakage_severity="fatal"),
        dict(review_size=-1),
        dict(leakage_pixel_correlation=2.0),
        dict(min_probe_accuracy=1.5),
        dict(nearest="fast"),
        dict(exact_pairs_limit=-1),
    ],
)
def test_bad_config_is_a_usage_error(bad):
    with pytest.raises(UsageError, match="audit."):
        AuditConfig(**bad).validate()


def test_only_test_leakage_with_error_severity_stops_the_run():
    assert AuditResult("o", "", 0, 10, {"val": 3, "test": 0}, "error", 0.0).ok
    assert not AuditResult("o", "", 0, 10, {"test": 1}, "error", 0.0).ok
    assert AuditResult("o", "", 0, 10, {"test": 1}, "warning", 0.0).ok


def _unit(rows):
    rows = np.asarray(rows, np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_nearest_and_the_pixel_confirmation():
    train = {
        "grid": _unit([[1, 0, 0], [0, 1, 0]]),
        "thumbnail": _unit([[1, -1, 0], [0, 1, -1]]),
        "labels": np.array([0, 1]),
        "filename": ["a", "b"],
        "sha256": ["ha", "hb"],
    }
    # image 0: same embedding and same pixels as train "a"; image 1: same embedding as "b", other pixels
    test = {
        "grid": _unit([[1, 0.01, 0], [0.01, 1, 0]]),
        "thumbnail": _unit([[1, -1, 0], [1, 0, -1]]),
        "labels": np.array([0, 1]),
        "filename": ["x", "y"],
        "sha256": ["hx", "hy"],
    }
    index, similarity = nearest(test["grid"], train["grid"])
    assert index.tolist() == [0, 1] and similarity.min() > 0.99
    rows, counts = _near_duplicates({"train": train, "test": test}, AuditConfig())
    assert counts == {"test": 1} and [(r["path"], r["train_path"], r["same_label"]) for r in rows] == [("x", "a", True)]


def test_label_issues_never_fork_the_tensorflow_process(monkeypatch):
    """cleanlab forks a multiprocessing.Pool by default; a fork of a process running TensorFlow's
    threads can deadlock, so the audit asks for one process (components/audit/label_issues.py)."""
    import multiprocessing

    from components.audit.label_issues import ranked_issues

    def no_pool(*args, **kwargs):
        raise AssertionError("the audit forked worker processes")

    monkeypatch.setattr(multiprocessing, "Pool", no_pool)
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 50)
    probabilities = rng.dirichlet(np.ones(4), size=200) * 0.3
    probabilities[np.arange(200), labels] += 0.7
    probabilities[:5] = [0.02, 0.02, 0.02, 0.94]  # five images of class 0 that look like class 3
    flagged = ranked_issues(labels, probabilities)
    assert set(range(5)) <= set(flagged)


def test_the_approximate_index_finds_what_the_exact_search_finds():
    """faiss's inverted-file index against the exact search on 20,000 random unit rows with 300 planted near-copies."""
    rng = np.random.default_rng(0)
    train = _unit(rng.normal(size=(20_000, 64)))
    copies = rng.choice(len(train), 300, replace=False)
    query = np.concatenate([_unit(train[copies] + rng.normal(0, 0.03, (300, 64))), _unit(rng.normal(size=(700, 64)))])
    exact_index, exact_similarity = nearest(query, train)
    index, similarity = nearest_approximate(query, train)
    assert (exact_index[:300] == copies).all() and exact_similarity[:300].min() > 0.95
    assert np.mean(index[:300] == copies) >= 0.98
    np.testing.assert_allclose(similarity[index == exact_index], exact_similarity[index == exact_index], atol=1e-5)
    assert search(query, train, "auto", exact_pairs_limit=10**12)[0].tolist() == exact_index.tolist()


def test_the_probe_reports_its_accuracy_and_an_estimate_apart_from_the_queue():
    from components.audit.label_issues import probe

    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 300)
    centres = rng.normal(0, 1, (4, 256))
    vectors = centres[labels] + rng.normal(0, 0.6, (1200, 256))
    wrong = labels.copy()
    wrong[:30] = (labels[:30] + 1) % 4  # 30 images of class 0 labelled 1
    clean, noisy = probe(vectors, labels, folds=5), probe(vectors, wrong, folds=5)
    assert clean.accuracy > 0.95 and clean.estimated_errors <= 6
    assert 15 <= noisy.estimated_errors <= 60 and noisy.probabilities.shape == (1200, 4)
