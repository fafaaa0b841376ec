"""The Beam defect behind refusing `--direct_running_mode=multi_threading` (components/common/beam_runner.py).

In that mode the FnApiRunner's in-process workers send elements through
`TimeBasedBufferingClosableOutputStream`: a background thread flushes the buffer every second by
sending `get()` and then calling `_clear()`, without stopping the bundle thread from writing in
between, so whatever is written while the send runs is discarded. This test drives the stream the
way the runner does (one writer thread, a send that takes a little time) and checks that bytes
are lost. When it fails after a Beam upgrade, Beam has fixed the race: lift the refusal in
`beam_runner.check_options` and put the mode back in benchmarks/ingest.py.
"""

import time

from apache_beam.runners.worker.data_plane import TimeBasedBufferingClosableOutputStream


def test_beam_time_flushed_stream_still_drops_writes_made_during_a_flush():
    received = []

    def send(data):  # a gRPC send: it takes time and lets the writer thread run
        time.sleep(0.005)
        received.append(data)

    stream = TimeBasedBufferingClosableOutputStream(
        close_callback=received.append, flush_callback=send, time_flush_threshold_ms=10
    )
    written, element = 0, b"x" * 100
    deadline = time.monotonic() + 0.3
    while time.monotonic() < deadline:
        stream.write(element)
        written += len(element)
        stream.maybe_flush()
    stream.close()
    assert sum(len(d) for d in received) < written, "Beam's flush no longer drops concurrent writes: lift the refusal"
