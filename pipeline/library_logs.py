"""Libraries' log records go to the run's `library.log`, not the console.

Beam logs a failed bundle's worker traceback at ERROR, TensorFlow and absl log their own notices,
and with no handler configured Python prints every WARNING and above on stderr. A scheduler's log
then holds tracebacks for failures we already explain in one line (a full disk, a changed file).
During a run these loggers write to `PIPELINE_ROOT/runs/<run_id>/library.log` instead, so the
detail is kept next to the run's `error.log` and the console holds only what the pipeline says.
"""
import contextlib
import logging

LIBRARIES = ("apache_beam", "absl", "tensorflow", "tensorflow_model_analysis", "tfx_bsl", "keras")


@contextlib.contextmanager
def to_file(path: str):
    """While inside, records of LIBRARIES go only to `path` (created on the first record)."""
    handler = logging.FileHandler(path, encoding="utf-8", delay=True)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    loggers = [logging.getLogger(name) for name in LIBRARIES]
    saved = [logger.propagate for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.propagate = False
    try:
        yield path
    finally:
        for logger, propagate in zip(loggers, saved):
            logger.removeHandler(handler)
            logger.propagate = propagate
        handler.close()
