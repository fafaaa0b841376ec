"""Errors that end a run with a clear message and a documented exit code.

Every failure a user can cause or fix is raised as one of these; `pipeline.run` prints the
message (what, where, how to fix) and exits with `exit_code`, never with a traceback.
The codes are documented in README.md ("Exit codes"); keep the two in step.
"""

import re

EXIT_OK = 0
EXIT_FAILURE = 1  # unexpected failure (a bug, or an environment problem we did not foresee)
EXIT_USAGE = 2  # bad flag, bad config value (argparse uses 2 as well)
EXIT_DATA = 3  # input data unusable or data validation failed (anomalies.json has errors)
EXIT_NOT_BLESSED = 4  # the model failed the evaluation gate: nothing was pushed
EXIT_LOCKED = 5  # another run holds the pipeline root's lock
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)
EXIT_TERMINATED = 143  # SIGTERM (128 + 15): a scheduler, a timeout or `kill` stopped the run


class Terminated(BaseException):
    """SIGTERM arrived. Raised in the main thread (like KeyboardInterrupt for Ctrl-C), so that every
    `finally` runs: the lineage records the run as interrupted and the lock is released."""


class PipelineError(Exception):
    """A failure with a message meant for the user and the exit code it maps to."""

    exit_code = EXIT_FAILURE


class UsageError(PipelineError):
    """A flag or config value is wrong; the message names it and the allowed values."""

    exit_code = EXIT_USAGE


class DataError(PipelineError):
    """The input data cannot be used (missing folder, one class, failed data validation)."""

    exit_code = EXIT_DATA


class NotBlessedError(PipelineError):
    """The candidate model failed the evaluation gate, so nothing was pushed."""

    exit_code = EXIT_NOT_BLESSED


class LockedError(PipelineError):
    """Another run is using the same pipeline root."""

    exit_code = EXIT_LOCKED


_ASSERTION = re.compile(r"assertion failed: \[(.*?)\]\s*$", re.MULTILINE)
_NOISE = re.compile(r"^(Graph execution error:|Detected at node|\s|File |$)")


def tensorflow_cause(message: str) -> str:
    """What TensorFlow's error says went wrong, on one line: the text of a failed assertion (the
    signatures' image checks), else the first line that is not "Graph execution error:", the
    "Detected at node" trace or blank, without the function/node decorations around it."""
    found = _ASSERTION.search(message)
    if found:
        return found.group(1)
    lines = [line for line in message.splitlines() if not _NOISE.match(line)] or [message.strip() or "unknown"]
    cause = re.sub(r"^\{\{function_node [^}]*\}\}\s*", "", lines[0])
    return re.sub(r"\s*\[(Op|\[\{\{node)[^\]]*\]+\s*$", "", cause).strip()
