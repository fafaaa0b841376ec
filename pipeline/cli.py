"""What every command-line tool of the pipeline does with an error: a message and an exit code.

A `PipelineError` is something the user can fix: its message (what, where, how to fix) and its
documented exit code. Anything else is a bug: one plain line and the code for unexpected failures,
never a traceback.
"""

import functools
import sys

from components.common.errors import EXIT_FAILURE, PipelineError


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
