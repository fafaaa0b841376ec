"""The audit's rules without a model: config checks, the verdict, nearest neighbours, the two-stage copy test."""
import numpy as np
import pytest

from components.audit import AuditConfig
from components.audit.audit import AuditResult, _near_duplicates
from components.audit.leakage import nearest
from components.common.errors import UsageError


@pytest.mark.parametrize("bad", [dict(folds=1), dict(leakage_similarity=0.0), dict(leakage_severity="fatal"),
                                 dict(review_size=-1), dict(leakage_pixel_correlation=2.0)])
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
    train = {"grid": _unit([[1, 0, 0], [0, 1, 0]]), "thumbnail": _unit([[1, -1, 0], [0, 1, -1]]),
             "labels": np.array([0, 1]), "filename": ["a", "b"], "sha256": ["ha", "hb"]}
    # image 0: same embedding and same pixels as train "a"; image 1: same embedding as "b", other pixels
    test = {"grid": _unit([[1, 0.01, 0], [0.01, 1, 0]]), "thumbnail": _unit([[1, -1, 0], [1, 0, -1]]),
            "labels": np.array([0, 1]), "filename": ["x", "y"], "sha256": ["hx", "hy"]}
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
