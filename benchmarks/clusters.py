"""Distributed Beam runners on localhost, each part a separate process: for tests and benchmarks.

    with local_cluster("portable", tmp_dir) as (flags, processes): pipeline.run(*flags, ...)
    with local_cluster("dask", tmp_dir, workers=2) as (flags, processes): ...

"portable": Beam's job service (`local_job_service_main`) and an external SDK worker pool
(`worker_pool_main`); flags `--runner=PortableRunner --job_endpoint --environment_type=EXTERNAL
--environment_config`, plus `--direct_num_workers=N`, which the job service's runner uses to ask
the pool for N SDK workers. "dask": `dask scheduler` and N single-threaded `dask worker`s; flags
`--runner=DaskRunner --dask_client_address`. Processes run this interpreter, and PATH starts with
its directory: the worker pool starts each SDK worker as plain `python`. Logs go to `log_dir`.
"""

import contextlib
import os
import socket
import subprocess
import sys
import time

ENV = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, process, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with {process.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.3)
    raise TimeoutError(f"nothing listens on port {port} after {seconds} s ({process.args})")


@contextlib.contextmanager
def _processes(log_dir, commands: dict):
    logs, started = [], {}
    try:
        for name, command in commands.items():
            log = open(os.path.join(log_dir, f"{name}.log"), "w")
            logs.append(log)
            started[name] = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=ENV, cwd=log_dir)
        yield started
    finally:
        for process in started.values():
            process.terminate()
        for process in started.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        for log in logs:
            log.close()


@contextlib.contextmanager
def local_cluster(kind: str, log_dir, workers: int = 2):
    """Start a `kind` ("portable" or "dask") cluster; yield (pipeline.run flags, {name: Popen})."""
    log_dir = str(log_dir)
    python = sys.executable
    if kind == "portable":
        job, pool = free_port(), free_port()
        with _processes(
            log_dir,
            {
                "job_service": [
                    python,
                    "-m",
                    "apache_beam.runners.portability.local_job_service_main",
                    "--port",
                    str(job),
                ],
                "worker_pool": [
                    python,
                    "-m",
                    "apache_beam.runners.worker.worker_pool_main",
                    "--service_port",
                    str(pool),
                ],
            },
        ) as started:
            wait_for_port(job, started["job_service"])
            wait_for_port(pool, started["worker_pool"])
            yield (
                [
                    "--runner=PortableRunner",
                    f"--job_endpoint=localhost:{job}",
                    "--environment_type=EXTERNAL",
                    f"--environment_config=localhost:{pool}",
                    f"--direct_num_workers={workers}",
                ],
                started,
            )
    elif kind == "dask":
        from distributed import Client

        port = free_port()
        address = f"tcp://127.0.0.1:{port}"
        worker = [
            python,
            "-m",
            "distributed.cli.dask_worker",
            address,
            "--nworkers",
            "1",
            "--nthreads",
            "1",
            "--no-dashboard",
        ]
        commands = {
            "scheduler": [
                python,
                "-m",
                "distributed.cli.dask_scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-dashboard",
            ]
        }
        commands.update({f"worker_{i}": worker for i in range(workers)})
        with _processes(log_dir, commands) as started:
            wait_for_port(port, started["scheduler"])
            with Client(address, timeout=30) as client:
                client.wait_for_workers(workers, timeout=60)
            yield ["--runner=DaskRunner", f"--dask_client_address={address}"], started
    else:
        raise ValueError(f"unknown cluster kind {kind!r}: 'portable' or 'dask'")
