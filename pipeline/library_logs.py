"""Libraries' log records and Python warnings go to the run's `library.log`, not the console.

Beam logs a failed bundle's worker traceback at ERROR, TensorFlow and absl log their own notices,
Keras and TFMA raise deprecation and user warnings, and with no handler configured Python prints
every WARNING and above on stderr. A scheduler's log then holds tracebacks for failures we already
explain in one line (a full disk, a changed file) and pages of deprecation notices. During a run
these loggers (their own handlers included: TensorFlow installs a stderr one) and the `warnings`
module write to `PIPELINE_ROOT/runs/<run_id>/library.log` instead, with the native C++ lines
`console.py` filters, so the detail is kept next to the run's `error.log` and the console holds
only what the pipeline says. Nothing is dropped: warnings are each recorded once per place, as
Python does by default.
"""

import contextlib
import logging

from pipeline import console

LIBRARIES = ("apache_beam", "absl", "tensorflow", "tensorflow_model_analysis", "tfx_bsl", "keras", "py.warnings")


class _FileHandler(logging.FileHandler):
    def handleError(self, record):
        """A log that cannot be written (a full disk) stays silent: logging's default prints a traceback
        on the console, and the run's own one-line message already says what went wrong."""


class _Handlers(list):
    """A logger's handler list that keeps only ours: TensorFlow adds a stderr handler to its logger when
    it is first imported, which happens inside the run now that the orchestrator does not load it."""

    def append(self, handler):
        pass


@contextlib.contextmanager
def to_file(path: str):
    """While inside, records of LIBRARIES go only to `path` (created on the first record)."""
    handler = _FileHandler(path, encoding="utf-8", delay=True)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    loggers = [logging.getLogger(name) for name in LIBRARIES]
    saved = [(logger.handlers, logger.propagate) for logger in loggers]
    for logger in loggers:
        logger.handlers = _Handlers([handler])
        logger.propagate = False
    logging.captureWarnings(True)
    console.attach(path)
    try:
        yield path
    finally:
        console.attach(None)
        logging.captureWarnings(False)
        for logger, (handlers, propagate) in zip(loggers, saved):
            logger.handlers = handlers
            logger.propagate = propagate
        handler.close()
