"""The generated parts of the docs match the code they are generated from (`python -m pipeline.docs`)."""

import pytest

from components.common import formats
from pipeline import docs


def test_generated_docs_are_fresh(capsys):
    assert docs.main(["--check"]) == 0, capsys.readouterr().err


def test_a_registry_change_without_regenerating_is_caught(monkeypatch, capsys):
    monkeypatch.setattr(formats, "FORMATS", dict(formats.FORMATS))
    saved_model = formats.FORMATS["saved_model"]
    formats.register(formats.Format("extra", "Extra", "extra/model.bin", saved_model.write, saved_model.open))
    assert docs.main(["--check"]) == 1
    assert "stale: schemas/ARTIFACTS.md; run python -m pipeline.docs" in capsys.readouterr().err


def test_missing_markers_are_named():
    with pytest.raises(SystemExit, match="generated:formats"):
        docs.render("no markers here", {"formats": docs.formats_table})
