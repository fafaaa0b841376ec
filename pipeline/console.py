"""Native libraries' log lines stay off the console of `python -m pipeline.<tool>`.

TensorFlow's C++ core, XLA and absl write straight to file descriptor 2 ("oneDNN custom operations
are on", "failed call to cuInit", "All log messages before absl::InitializeLog()..."), around
Python's logging, and so do Beam's worker processes, which inherit it. Setting
TF_CPP_MIN_LOG_LEVEL does not reach the lines logged before absl is initialised. So a command-line
tool points fd 2 at a pipe, and a thread copies every line to the real stderr except the lines in
the native log format (`I0000 00:00:... file.cc:12] ...`, absl's two preamble lines, and the two
lines TFLite's converter and interpreter print on every export: "fully_quantize: 0, ..." and
"INFO: Created TensorFlow Lite XNNPACK delegate"), which it
keeps: in memory until a run opens its `library.log` (`library_logs.to_file` calls `attach`), then
there. Our own messages and Python tracebacks pass through unchanged.

Installed by `pipeline/__init__.py` only when the interpreter was started as `python -m pipeline.X`,
never on import as a library (a test's or a notebook's stderr is left alone).
"""

import atexit
import os
import re
import sys
import threading

NATIVE_LINE = re.compile(
    rb"^(?:[IWEF]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [^\]]+\] |WARNING: All log messages before "
    rb"absl::InitializeLog\(\) is called|WARNING: Logging before InitGoogle\(\) is written to STDERR"  # mediapipe's
    rb"|To enable the following instructions: "
    rb"|INFO: Created TensorFlow Lite |fully_quantize: \d)"
)  # the last two: TFLite's runtime, converter
_KEPT_IN_MEMORY = 200  # lines kept until a library.log is attached (the import-time preamble is ~10)


class _Filter(threading.Thread):
    def __init__(self, read_fd: int, console_fd: int):
        super().__init__(name="native-log-filter", daemon=True)
        self._read_fd, self._console_fd = read_fd, console_fd
        self._lock = threading.Lock()
        self._kept: list = []
        self._sink = None

    def attach(self, path):
        """Send kept and future native lines to `path` (None: keep them in memory again)."""
        with self._lock:
            if self._sink:
                self._sink.close()
            self._sink = open(path, "ab") if path else None
            if self._sink:
                self._sink.writelines(self._kept)
                self._sink.flush()
                self._kept = []

    def run(self):
        with os.fdopen(self._read_fd, "rb", buffering=0) as pipe:
            for line in iter(pipe.readline, b""):
                try:
                    self._route(line)
                except (OSError, ValueError):
                    pass  # the console or the log went away: keep draining, or every writer to fd 2 would block

    def _route(self, line: bytes) -> None:
        if not NATIVE_LINE.match(line):
            os.write(self._console_fd, line)
            return
        with self._lock:
            if self._sink:
                self._sink.write(line)
                self._sink.flush()
            elif len(self._kept) < _KEPT_IN_MEMORY:
                self._kept.append(line)


_filter = None


def install() -> None:
    """Route fd 2 through the filter for the rest of this process (once)."""
    global _filter
    if _filter is not None:
        return
    read_fd, write_fd = os.pipe()
    console_fd = os.dup(2)
    os.dup2(write_fd, 2)
    os.close(write_fd)
    _filter = _Filter(read_fd, console_fd)
    _filter.start()

    def restore():
        sys.stderr.flush()
        os.dup2(console_fd, 2)  # closes our write end of the pipe: the thread sees the end of its input
        _filter.join(timeout=2)

    atexit.register(restore)


def attach(path) -> None:
    """Native lines go to `path` from now on (no-op when the filter is not installed)."""
    if _filter is not None:
        _filter.attach(path)


def started_as_tool(orig_argv: list) -> bool:
    """Whether the interpreter was started as `python [options] -m pipeline.<tool>`."""
    i = 1
    while i < len(orig_argv):
        arg = orig_argv[i]
        if arg == "-m":
            return i + 1 < len(orig_argv) and orig_argv[i + 1].startswith("pipeline.")
        if arg == "-c" or not arg.startswith("-"):  # a command or a script: arguments after it are its own
            return False
        i += 2 if arg in ("-X", "-W") else 1
    return False
