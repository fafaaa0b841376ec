"""A new component is its code plus one `Node(...)` registration: caching, lineage, exit codes and
the report come from the orchestrator, which names no component.

This module is the whole extra component: a config dataclass, a result, an artifact kind and a
`run` entry (the shape of `components/<name>/`). The test registers it after the ingest and runs
`pipeline.run` in-process with the stand-ins for the standard components.
"""

import dataclasses
import json
import os

from pipeline_helpers import FAKES, install_fakes, make_folder, read_log

from components.common.errors import EXIT_DATA, DataError, UsageError
from components.common.outcome import Outcome
from components.common.publish import publish_dir
from pipeline import dag
from pipeline import run as run_mod
from pipeline import runs as runs_mod
from schemas.artifacts import Artifact, Examples


@dataclasses.dataclass(frozen=True)
class CountConfig:
    """The `count:` config section: how many kept images the data needs."""

    min_images: int = 1

    def validate(self) -> None:
        if not isinstance(self.min_images, int) or self.min_images < 1:
            raise UsageError(f"count.min_images={self.min_images!r}: must be an integer >= 1")


class Counts(Artifact):
    TYPE, WHAT, FILE = "ImageCounts", "the count output", "count.json"


@dataclasses.dataclass(frozen=True)
class CountResult(Outcome):
    output_dir: str
    images: int
    required: int

    @property
    def ok(self) -> bool:
        return self.images >= self.required

    def summary(self) -> str:
        return f"count: {self.images} images, {self.required} required"


def run(config: CountConfig, ingest_dir: str, output_dir: str) -> CountResult:
    """Count the manifest's images into count.json."""
    images = len(Examples(ingest_dir).manifest())
    with publish_dir(output_dir) as tmp:
        with open(Counts(tmp).path(Counts.FILE), "w") as f:
            json.dump({"images": images}, f)
    with open(os.environ["FAKE_LOG"], "a") as f:
        f.write(json.dumps({"component": "count", "out": output_dir}) + "\n")
    return CountResult(output_dir, images, config.min_images)


COUNT = dag.Node(
    "count",
    ("ingest",),
    Counts,
    module=__name__,
    config=f"{__name__}:CountConfig",
    failure=lambda summary, uri: DataError(f"too few images: {summary}"),
    call=lambda run, ctx, inputs, out, resolved: run(ctx.config["count"], inputs["ingest"], out),
)


def test_a_registered_component_is_cached_recorded_reported_and_mapped_to_exit_codes(tmp_path, monkeypatch):
    install_fakes(monkeypatch)
    monkeypatch.setattr(dag, "NODES", (dag.NODES[0], COUNT, *dag.NODES[1:]))  # the one registration line
    monkeypatch.setattr(
        dag, "entry_point", lambda node: FAKES.get(node.name) or getattr(__import__(node.module), "run")
    )
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv("FAKE_LOG", str(log))
    folder = make_folder(tmp_path / "images", per_class=2, size=8)
    root = tmp_path / "root"
    base = ["--data-dir", str(folder), "--pipeline-root", str(root), "--weights", "none"]

    def main(*extra):
        before = len(read_log(log))
        code = run_mod.main(base + list(extra))
        return code, [c["component"] for c in read_log(log)[before:]]

    assert main("--stop-after", "count") == (0, ["ingest", "count"])
    assert main() == (0, ["validate", "tune", "train", "audit", "export", "evaluate", "push"]), (
        "count reused, the rest ran"
    )
    assert main("--set", "count.min_images=3") == (0, ["count"]), "its config section is part of its fingerprint"
    code, calls = main("--set", "count.min_images=100")
    assert (code, calls) == (EXIT_DATA, ["count"]), "a result that is not ok stops with the node's exit code"
    assert main("--set", "count.min_images=100")[0] == EXIT_DATA, "and so does its reuse"
    assert main("--set", "count.min_images=0")[0] == 2, "its config is validated before any work"

    store_rows = runs_mod.list_runs(runs_mod.metadata.Store(str(root / "metadata.sqlite")))
    assert "count:ran" in store_rows and "count:reused" in store_rows
    reports = [run_dir / "report.html" for run_dir in (root / "runs").iterdir()]
    assert len(reports) == 5 and all("<td>count</td>" in r.read_text() for r in reports), "in every run's lineage"
    outputs = [p for p in (root / "count").iterdir() if not p.name.startswith(".")]
    assert {json.loads((p / Counts.FILE).read_text())["images"] for p in outputs} == {6}
