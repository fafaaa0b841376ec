"""Publishing where a directory rename is not atomic (object stores copy object by object; issue 12).

The completion marker is the commit point: a reader polling the destination during the copy must
never see a marked directory with files still missing, and a copy cut short leaves no marker.
"""

import os

import pytest

from components.common import fileio, publish
from schemas.artifacts import COMPLETE_MARKER, Artifact


@pytest.fixture
def object_store(monkeypatch):
    """fileio as on an object store: renames copy file by file; `seen` records what a reader saw."""
    seen = []

    def copying_rename(src, dst, overwrite=False):
        if not os.path.isdir(src):  # single files (the marker's own temporary file) move at once
            return os.replace(src, dst)
        for folder, _dirs, names in os.walk(src):
            for name in sorted(names):
                target = os.path.join(dst, os.path.relpath(os.path.join(folder, name), src))
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with open(os.path.join(folder, name), "rb") as f, open(target, "wb") as g:
                    g.write(f.read())
                seen.append((Artifact(dst).is_complete(), len(os.listdir(dst))))
                if name == "stop-here":
                    raise OSError("connection reset while copying")
        fileio.rmtree(src)

    monkeypatch.setattr(fileio, "atomic_rename", lambda path: False)
    monkeypatch.setattr(fileio, "rename", copying_rename)
    return seen


def _write(root, names):
    for name in names:
        with open(os.path.join(root, name), "w") as f:
            f.write(name * 100)


def test_the_marker_arrives_after_every_file(tmp_path, object_store):
    final = str(tmp_path / "artifact")
    with publish.publish_dir(final) as tmp:
        _write(tmp, ["a.txt", "b.txt", "c.txt", COMPLETE_MARKER + "x"])
    assert len(object_store) == 4 and not any(complete for complete, _ in object_store)
    assert Artifact(final).is_complete() and Artifact(final).damage(deep=True) == ""
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".tmp-")]


def test_a_copy_cut_short_leaves_no_marker(tmp_path, object_store):
    final = str(tmp_path / "artifact")
    with pytest.raises(OSError, match="connection reset"):
        with publish.publish_dir(final) as tmp:
            _write(tmp, ["a.txt", "stop-here", "z.txt"])
    assert os.path.isdir(final) and not Artifact(final).is_complete()
    assert "incomplete" in Artifact(final).damage()


def test_on_local_disks_the_marker_is_inside_before_the_atomic_rename(tmp_path, monkeypatch):
    renamed = []
    real = fileio.rename
    monkeypatch.setattr(
        fileio,
        "rename",
        lambda s, d, overwrite=False: (
            renamed.append(os.path.isdir(s) and os.path.exists(os.path.join(s, COMPLETE_MARKER))),
            real(s, d, overwrite),
        )[1],
    )
    with publish.publish_dir(str(tmp_path / "artifact")) as tmp:
        _write(tmp, ["a.txt"])
    assert renamed[-1] is True and Artifact(str(tmp_path / "artifact")).damage(deep=True) == ""
