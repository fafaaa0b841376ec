"""report.html of a real run holds every section with real pictures, and renders in a browser."""

import base64
import html.parser
import io
import re
import shutil
import subprocess

import pytest
from PIL import Image
from pipeline_helpers import shared_first_run

pytestmark = pytest.mark.slow  # seconds to minutes per test: the full tier only (pytest.ini)

SECTIONS = ["data", "training", "metrics", "confusion", "trust", "audit", "worst", "gate", "formats", "lineage"]


class _Page(html.parser.HTMLParser):
    """Sections by id, and every embedded image with the section it is in."""

    def __init__(self):
        super().__init__()
        self.section = None
        self.sections = {}
        self.images = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self.section = attrs.get("id")
            self.sections[self.section] = ""
        if tag == "img":
            self.images.append((self.section, attrs.get("alt"), attrs.get("src", "")))

    def handle_data(self, data):
        if self.section:
            self.sections[self.section] += data


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root, _folder, _args, proc = shared_first_run(tmp_path_factory)
    run_id = re.search(r"\[pipeline\] run (\S+) in", proc.stdout).group(1)
    path = root / "runs" / run_id / "report.html"
    page = _Page()
    page.feed(path.read_text())
    return path, page, proc


def _png(src: str) -> Image.Image:
    assert src.startswith("data:image/png;base64,"), src[:40]
    image = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
    image.load()
    return image


def test_every_section_is_there_with_content(report):
    _path, page, _proc = report
    assert list(page.sections) == SECTIONS
    for name, text in page.sections.items():
        assert "did not run" not in text and "could not be built" not in text, (name, text[:300])
    data = page.sections["data"]
    assert "class_0" in data and "empty" in data and "not_image" in data  # counts and rejected by reason
    assert "min_accuracy" in page.sections["gate"] and "BLESSED" in page.sections["gate"]
    assert "TFLite float32" in page.sections["formats"] and "TFLite dynamic-range" in page.sections["formats"]
    assert "SavedModel" in page.sections["formats"] and "reference" in page.sections["formats"]
    for metric in ("precision", "recall", "F1", "accuracy"):
        assert metric in page.sections["metrics"]
    # 36 photos leave 3 val images: too few to fit a temperature on (issue 35), and the section says so
    trust = page.sections["trust"]
    assert "ECE" in trust and "No temperature was fitted" in trust and "Warning: only 3 val images" in trust
    assert re.search(r"ECEn/a\d\.\d{4}NLLn/a\d+\.\d{4}", trust)  # no "before"; the exported model's, measured
    assert (
        "out-of-fold accuracy" in page.sections["audit"] and "Near-copies" in page.sections["audit"]
    )  # issue 22: the claim says what the probe supports
    assert "interval" in page.sections["gate"]  # every check shows its interval, images and p
    lineage = page.sections["lineage"]
    assert "data fingerprint" in lineage and "code version" in lineage and "baseline" in lineage
    assert "train:" in lineage  # the effective config


def test_images_are_real_pngs(report):
    _path, page, _proc = report
    by_section = {}
    for section, alt, src in page.images:
        image = _png(src)
        assert image.width > 8 and image.height > 8
        by_section.setdefault(section, []).append(alt)
    assert len(by_section["data"]) >= 2, "a thumbnail per rejected file"
    assert by_section["training"] == ["training curves per stage"]
    assert by_section["confusion"] == ["confusion matrix heatmap"]
    if "classified correctly" not in page.sections["worst"]:
        assert by_section["worst"] == ["worst misclassified grid"]


def test_text_summary_printed_and_saved(report):
    path, _page, proc = report
    summary = (path.parent / "summary.txt").read_text()
    assert summary.splitlines()[0].endswith("complete")
    assert "data:" in summary and "gate: BLESSED" in summary
    assert summary.strip() in proc.stdout
    assert f"report: {path}" in proc.stdout


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed (apt-get install chromium)")
def test_report_renders_in_headless_chromium(report, tmp_path):
    path, _page, _proc = report
    shot = tmp_path / "report.png"
    subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--window-size=1200,3000",
            f"--screenshot={shot}",
            path.as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )
    image = Image.open(shot).convert("L")
    assert image.size == (1200, 3000)
    histogram = image.histogram()
    dark = sum(histogram[:128]) / (image.width * image.height)
    assert 0.005 < dark < 0.5, f"the page looks blank or broken: {dark:.3f} of it is dark"


def test_the_two_test_accuracies_say_which_model_they_are_of(report):
    """Issue 35: `train: test accuracy 0.889` beside `evaluate: accuracy 1.000`, unexplained."""
    path, page, proc = report
    summary = (path.parent / "summary.txt").read_text()
    train = next(line for line in summary.splitlines() if line.startswith("train:"))
    evaluate = next(line for line in summary.splitlines() if line.startswith("evaluate:"))
    assert "(the Keras model, one plain pass)" in train
    assert "(the exported SavedModel" in evaluate
    assert "scored by the exported SavedModel" in page.sections["metrics"]
    assert "the Keras model, one plain pass, before export" in page.sections["training"]
    assert "of the exported SavedModel" in proc.stdout and "(the Keras model, one plain pass;" in proc.stdout
