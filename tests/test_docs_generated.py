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
    # the formats table and the --model-format choices name the new format
    stale = "stale: schemas/ARTIFACTS.md, docs/cli.md; run python -m pipeline.docs"
    assert stale in capsys.readouterr().err


def test_missing_markers_are_named():
    with pytest.raises(SystemExit, match="generated:formats"):
        docs.render("no markers here", {"formats": docs.formats_table})


def test_a_default_changed_without_regenerating_is_caught(monkeypatch, capsys):
    from components.evaluate.config import EvaluateConfig

    field = EvaluateConfig.__dataclass_fields__["min_accuracy"]
    monkeypatch.setattr(field, "default", 0.75)
    assert docs.main(["--check"]) == 1
    assert "stale: docs/configuration.md, pipeline.yaml; run python -m pipeline.docs" in capsys.readouterr().err


def test_the_reference_states_what_the_code_checks():
    from pipeline import reference

    text = reference.configuration_md()
    row = next(line for line in text.splitlines() if line.startswith("| `evaluate.significance` |"))
    assert "| float | `0.05` | must be in (0, 1) | the level of the paired test (one-sided). |" in row
    flags = reference.cli_md()
    assert "| `--rest_api_port` `REST_API_PORT` | `8501` |" in flags and "`--tune-budget` `SECONDS`" in flags


def test_a_field_without_a_docstring_entry_stops_the_generator(monkeypatch):
    import dataclasses

    from pipeline import config, reference

    @dataclasses.dataclass(frozen=True)
    class Undocumented:
        """A section whose field has no `name: ...` entry."""

        threshold: float = 0.5

        def validate(self):
            pass

    monkeypatch.setattr(config, "section_classes", lambda: {"extra": Undocumented})
    with pytest.raises(SystemExit, match="no docstring entry `threshold: ...` for extra.threshold"):
        reference.configuration_md()


def test_a_new_anomaly_code_without_regenerating_is_caught(monkeypatch, capsys):
    """docs/data.md's table of checks missed `class_folder_empty` and `symlink_loop` (issue 35): it is
    now generated from components/validate/checks.py's CODES."""
    from components.validate import checks

    monkeypatch.setattr(checks, "CODES", {**checks.CODES, "extra": checks.Code("extra", "warning", "never")})
    assert docs.main(["--check"]) == 1
    assert "stale: docs/data.md; run python -m pipeline.docs" in capsys.readouterr().err
    table = docs.checks_table()
    assert "| `extra` | warning | never |" in table and "| `symlink_loop` | warning |" in table


def test_a_benchmark_figure_changed_without_regenerating_is_caught(monkeypatch, capsys):
    from benchmarks import page

    real = page.load

    def rerun(name):
        result = real(name)
        if name == "cli_latency_results":
            result["seconds"]["pipeline.predict --help"]["median_s"] = 9.5
        return result

    monkeypatch.setattr(page, "load", rerun)
    assert "`pipeline.predict` 9.50 s" in page.benchmarks_md()
    assert docs.main(["--check"]) == 1
    assert "stale: docs/benchmarks.md; run python -m pipeline.docs" in capsys.readouterr().err


def test_every_benchmark_result_is_on_the_page_with_its_run():
    """Each benchmarks/*.json is read by the page and says what ran, when and where."""
    import pathlib

    from benchmarks import page

    read = []
    real = page.load

    def spy(name):
        read.append(name)
        return real(name)

    page.load = spy
    try:
        page.benchmarks_md()
    finally:
        page.load = real
    files = {p.stem for p in pathlib.Path(page.HERE).glob("*.json")}
    assert files - set(read) == set(), "results no section shows"
    for name in files:
        result = real(name)
        runs = result.get("runs") if isinstance(result.get("runs"), list) else [result]
        for run in runs:
            assert {"command", "date", "machine"} <= set(run), f"{name} lacks its command, date or machine"
