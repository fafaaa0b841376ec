"""Every reject reason end to end: ONE ingest run over the fixture tree, one test per reason.

A rejected file must be listed in rejected.csv with its reason and an explanation, and must not
be among the written records; kept + rejected + ignored = found holds in every test.
"""

import image_fixtures as fx
import pytest


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return fx.ingest_fixture_tree(str(tmp_path_factory.mktemp("fixture-tree")))


def _rejected_cases():
    first = fx.CLASSES[0]
    cases = [(name, f"{first}/{spec.file_name}", spec.reason) for name, spec in fx.REJECT_CASES.items()]
    cases.append(("too_large_real", f"{first}/{fx.BIG_CASE.file_name}", "too_large"))
    cases.append(("bad_filename", fx.BAD_NAME_LISTED, "bad_filename"))
    cases += [(f"label_conflict_{c}", f"{c}/conflict.jpg", "label_conflict") for c in fx.CLASSES[:2]]
    return cases


@pytest.mark.parametrize("case, path, reason", _rejected_cases(), ids=[c[0] for c in _rejected_cases()])
def test_rejected_with_reason_and_not_written(tree, case, path, reason):
    fx.assert_accounting(tree.stats)
    assert tree.expected[path].reason == reason
    assert path in tree.rejected, f"{case}: {path} is not in rejected.csv"
    assert tree.rejected[path]["reason"] == reason, tree.rejected[path]
    assert len(tree.rejected[path]["detail"]) > 20
    assert path not in tree.records and path not in tree.manifest


def test_duplicate_pair_keeps_exactly_one_copy(tree):
    fx.assert_accounting(tree.stats)
    twins = [rel for rel, e in tree.expected.items() if e.outcome == fx.ONE_OF_TWIN]
    assert len(twins) == 2
    kept = [rel for rel in twins if rel in tree.records]
    rejected = [rel for rel in twins if rel in tree.rejected]
    assert len(kept) == 1 and len(rejected) == 1, (kept, rejected)
    assert tree.rejected[rejected[0]]["reason"] == "duplicate"
    assert kept[0] in tree.rejected[rejected[0]]["detail"]  # says which copy was kept


def test_ignored_files_are_counted_not_rejected(tree):
    fx.assert_accounting(tree.stats)
    ignored = [rel for rel, e in tree.expected.items() if e.outcome == fx.IGNORED]
    for rel in ignored:
        assert rel not in tree.rejected and rel not in tree.records
    assert tree.stats["files"]["ignored"] == len(ignored)


def test_every_file_is_accounted_for(tree):
    """Nothing kept that should be rejected, nothing lost: the per-file view of the invariant."""
    fx.assert_accounting(tree.stats)
    files = tree.stats["files"]
    assert files["found"] == len(tree.expected)
    want_rejected = {rel for rel, e in tree.expected.items() if e.outcome == fx.REJECTED}
    assert want_rejected <= set(tree.rejected)
    assert set(tree.rejected) - want_rejected <= {
        rel for rel, e in tree.expected.items() if e.outcome == fx.ONE_OF_TWIN
    }
    assert files["kept"] == len(tree.records) == len(tree.manifest)
    by_reason = {}
    for row in tree.rejected.values():
        by_reason[row["reason"]] = by_reason.get(row["reason"], 0) + 1
    assert tree.stats["rejected_by_reason"] == by_reason
