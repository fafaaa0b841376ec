"""README.md stays true: CI runs its test command, its map lists every docs page, and every link resolves."""

import pathlib
import re

from pipeline import run as run_mod

PROJECT = pathlib.Path(__file__).resolve().parents[1]
README = (PROJECT / "README.md").read_text()


def _quickstart_commands() -> list:
    section = README.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line.strip() for line in block.splitlines() if line.strip()]


def test_ci_runs_the_readme_test_command():
    commands = _quickstart_commands()
    assert len(commands) == 2, commands
    ci_lines = [
        line.strip()
        for line in (PROJECT / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith(("#", "set ", "cd ", "export "))
    ]
    assert commands[1] in ci_lines, (commands[1], ci_lines)
    assert "pytest" in commands[1] and "pipeline.run" in commands[0]


def test_the_docs_map_lists_every_page():
    listed = set(re.findall(r"\]\((docs/[\w-]+\.md)\)", README.split("## Documentation", 1)[1]))
    pages = {p.relative_to(PROJECT).as_posix() for p in (PROJECT / "docs").glob("*.md")}
    assert listed == pages, (sorted(pages - listed), sorted(listed - pages))


def test_every_relative_link_resolves():
    broken = []
    for page in [PROJECT / "README.md", *(PROJECT / "docs").glob("*.md")]:
        prose = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)  # code is no link
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", prose):
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(PROJECT)} -> {target}")
    assert not broken, broken


def test_the_readme_is_short_and_every_pipeline_run_flag_is_in_the_reference():
    assert len(README.splitlines()) <= 160
    flags = {
        opt
        for action in run_mod.build_parser()._actions
        for opt in action.option_strings
        if opt.startswith("--") and opt != "--help"
    }
    reference = (PROJECT / "docs" / "cli.md").read_text()
    assert not [f for f in flags if f"`{f}`" not in reference]
