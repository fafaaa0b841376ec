"""The docs read as sentences: no paragraph starts mid-sentence or indented by a stray space, brackets
and backticks pair up, and no flag is named twice in a row (issue 35 found each in the pages)."""

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _paragraphs(text: str):
    """Prose paragraphs: code blocks, headings, tables and HTML comments left out."""
    paragraph, fenced = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        if fenced or line.startswith("```") or not line.strip() or line.startswith(("#", "|", "<!--")):
            if paragraph:
                yield paragraph
            paragraph = []
            continue
        paragraph.append(line)
    if paragraph:
        yield paragraph


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_paragraphs_are_whole_sentences(page):
    for paragraph in _paragraphs(page.read_text()):
        first, text = paragraph[0], " ".join(paragraph)
        assert not re.match(r"^\s+(?![-*]\s|\d+\.\s)\S", first), f"{page.name}: indented start: {first!r}"
        assert not re.match(r"^[a-z]", first), f"{page.name}: starts mid-sentence: {first!r}"
        assert text.count("`") % 2 == 0, f"{page.name}: unpaired backtick in: {first!r}"
        plain = re.sub(r"`[^`]*`", "", text)
        plain = re.sub(r"[(\[][\d., ]+[)\]]", "", plain)  # intervals such as (0, 1]
        assert plain.count("(") == plain.count(")"), f"{page.name}: unpaired bracket in: {first!r}"
        repeated = re.search(r"(`--[\w-]+[^`]*`)[;,] \1", text)
        assert not repeated, f"{page.name}: {repeated.group(0)!r}"
