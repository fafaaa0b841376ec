"""`python -m pipeline.serve --model_base_path=SERVING_DIR/NAME`: serve pushed versions with TF Serving's REST and gRPC APIs.

The flags are TF Serving's (`tensorflow_model_server`), so a deployment can switch between the two:
--rest_api_port, --port (gRPC; off unless given), --model_name, --model_base_path,
--file_system_poll_wait_seconds, --enable_batching, --max_batch_size, --batch_timeout_micros,
--num_batch_threads; plus this server's bounds, --max_request_bytes, --max_concurrent_requests,
--max_instances_per_request and --max_decoding_bytes, and --host.
It prints `serving NAME at http://HOST:PORT/v1/models/NAME` once the port is bound (port 0 picks a
free one), loads the newest version (replaying its warm-up requests), then with --port prints
`serving NAME over gRPC at HOST:PORT`, before answering; it then follows
the directory: a newly pushed version replaces the served one without a restart; one that fails to
load is reported by the status call and not served. Metrics are at /monitoring/prometheus/metrics. SIGTERM or Ctrl-C stops it cleanly: no new
connections, in-flight requests answered, polling stopped, then exit 143 (SIGTERM) or 130 (Ctrl-C),
the pipeline's codes for the same signals. Exit 2: bad flag, missing directory, or a port that cannot be bound; 1: the first
version's load crashed the startup (the log says why).
"""

import argparse
import logging
import os
import signal
import socket
import sys

from components.common.errors import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, EXIT_TERMINATED, UsageError
from pipeline.cli import Parser, exits_with_codes


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m pipeline.serve", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model_base_path", required=True, help="the model's folder of integer versions, SERVING_DIR/<push.model_name>"
    )
    parser.add_argument("--model_name", help="name in the URLs (default: the folder's name)")
    parser.add_argument(
        "--rest_api_port", type=int, default=8501, help="port (default: 8501, TF Serving's; 0: any free)"
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default: 127.0.0.1, this machine only; 0.0.0.0 for every interface)",
    )
    parser.add_argument(
        "--file_system_poll_wait_seconds",
        type=float,
        default=1.0,
        help="seconds between looks for new versions (default: 1, as TF Serving)",
    )
    parser.add_argument(
        "--enable_batching",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="batch concurrent requests (default: on)",
    )
    parser.add_argument("--max_batch_size", type=int, default=32, help="rows per batch (default: 32)")
    parser.add_argument(
        "--batch_timeout_micros",
        type=int,
        default=0,
        help="how long a request may wait for others to batch with; 0 (default): none, requests "
        "batch only while every batch thread is busy (server/batching.py)",
    )
    parser.add_argument(
        "--num_batch_threads",
        type=int,
        help="batches run at once (default: the number of CPUs)",
    )
    parser.add_argument(
        "--max_request_bytes",
        type=int,
        default=16 * 2**20,
        help="largest request body accepted; larger ones get 413 (default: 16 MiB)",
    )
    parser.add_argument(
        "--max_concurrent_requests",
        type=int,
        default=64,
        help="predict requests in flight, REST and gRPC together; more get 503 / UNAVAILABLE at once (default: 64)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=None,
        help="gRPC port (TF Serving's PredictionService and ModelService; TF Serving's own default "
        "is 8500); 0: any free port; default: no gRPC",
    )
    parser.add_argument(
        "--max_instances_per_request",
        type=int,
        default=1024,
        help="instances (rows) in one predict request; more get 400 (default: 1024)",
    )
    parser.add_argument(
        "--max_decoding_bytes",
        type=int,
        default=None,
        help="bytes of decoded pixels admitted at once (up to 24 per pixel of every image in "
        "flight); requests wait for room in arrival order (default: four images at the served "
        "model's export.max_image_pixels, 1.2 GB at its default)",
    )
    return parser


def parse_args(argv=None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.num_batch_threads is None:
        args.num_batch_threads = os.cpu_count() or 1
    for flag in (
        "max_batch_size",
        "num_batch_threads",
        "max_request_bytes",
        "max_concurrent_requests",
        "max_instances_per_request",
    ):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag} must be >= 1")
    if args.max_decoding_bytes is not None and args.max_decoding_bytes < 1:
        parser.error("--max_decoding_bytes must be >= 1")
    if args.port is not None and not 0 <= args.port < 65536:
        parser.error("--port must be from 0 to 65535")
    if args.file_system_poll_wait_seconds <= 0 or args.batch_timeout_micros < 0:
        parser.error("--file_system_poll_wait_seconds must be > 0 and --batch_timeout_micros >= 0")
    return args


def _exit_by(signum, _frame):
    """Where uvicorn re-raises the signal it shut down on: exit with the pipeline's code for it, through
    Python's exit path, so the console filter (pipeline/console.py) writes out the last log lines."""
    raise SystemExit(EXIT_TERMINATED if signum == signal.SIGTERM else EXIT_INTERRUPTED)


def _bind(host: str, port: int) -> socket.socket:
    try:
        sock = socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET)
    except OSError as e:
        raise UsageError(
            f"cannot listen on {host}:{port}: {e.strerror} (choose another --rest_api_port, or stop what holds it)"
        ) from None
    sock.set_inheritable(True)
    return sock


@exits_with_codes
def main(argv=None) -> int:
    args = parse_args(argv)
    base_path = args.model_base_path.rstrip("/")
    if not os.path.isdir(base_path):
        raise UsageError(
            f"--model_base_path {base_path}: no such folder (the pipeline pushes to "
            "SERVING_DIR/<push.model_name>, by default <pipeline_root>/serving/classifier)"
        )
    name = args.model_name or os.path.basename(base_path)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    import uvicorn

    from server.app import create_app
    from server.predictor import ServeOptions

    options = ServeOptions(
        poll_seconds=args.file_system_poll_wait_seconds,
        max_batch_size=args.max_batch_size if args.enable_batching else 1,
        batch_timeout_s=args.batch_timeout_micros / 1e6 if args.enable_batching else 0.0,
        batch_threads=args.num_batch_threads,
        max_request_bytes=args.max_request_bytes,
        max_concurrent=args.max_concurrent_requests,
        max_instances=args.max_instances_per_request,
        max_decoding_bytes=args.max_decoding_bytes,
    )
    sock = _bind(args.host, args.rest_api_port)
    host, port = sock.getsockname()[:2]
    print(f"serving {name} at http://{host}:{port}/v1/models/{name}", flush=True)
    app = create_app(name, base_path, options, host, args.port, announce=lambda line: print(line, flush=True))
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=30, lifespan="on", access_log=False)
    )
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _exit_by)
    server.run(sockets=[sock])
    if not server.started and app.state.startup_error:
        raise UsageError(app.state.startup_error)
    return EXIT_OK if server.started else EXIT_FAILURE  # the log says why startup failed


if __name__ == "__main__":
    sys.exit(main())
