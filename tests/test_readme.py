"""README.md stays true: CI runs its test command, and every pipeline.run flag is documented."""

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


def test_every_pipeline_run_flag_is_documented():
    flags = {
        opt
        for action in run_mod.build_parser()._actions
        for opt in action.option_strings
        if opt.startswith("--") and opt != "--help"
    }
    section = README.split("## Orchestration", 1)[1]
    missing = sorted(f for f in flags if not re.search(re.escape(f) + r"(?![\w-])", section))
    assert not missing, f"flags missing from README 'Orchestration': {missing}"
