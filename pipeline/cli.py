"""What every command-line tool of the pipeline does with an error: a message and an exit code.

A `PipelineError` is something the user can fix: its message (what, where, how to fix) and its
documented exit code. Anything else is a bug: one plain line and the code for unexpected failures,
never a traceback.
"""

import argparse
import functools
import sys

from components.common.errors import EXIT_FAILURE, PipelineError
from components.common.suggest import did_you_mean


class Parser(argparse.ArgumentParser):
    """argparse's parser, whose "unrecognized arguments" error names the closest flag it knows
    (Python 3.14's `suggest_on_error`, here for the Pythons this project runs on)."""

    def error(self, message):
        if message.startswith("unrecognized arguments:"):
            flags = [s for action in self._actions for s in action.option_strings]
            for word in message.split(":", 1)[1].split():
                if word.startswith("--"):
                    message += did_you_mean(word.split("=")[0], flags, lambda s: s.replace("_", "-"))
        super().error(message)


def exits_with_codes(main):
    """Decorate a CLI body returning an exit code so that errors become messages and exit codes."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs) -> int:
        try:
            return main(*args, **kwargs)
        except PipelineError as e:
            print(f"error: {e}", file=sys.stderr)
            return e.exit_code
        except Exception as e:  # a bug: say so plainly, with the code for unexpected failures
            print(f"unexpected failure: {type(e).__name__}: {e}", file=sys.stderr)
            return EXIT_FAILURE

    return wrapper
