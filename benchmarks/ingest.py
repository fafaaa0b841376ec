"""Ingest throughput and memory against a plain one-process loop, measured in the same run.

    python -m benchmarks.ingest [--sizes 2000 20000] [--work-dir DIR]

For each size it generates photo-like 500x375 JPEGs (benchmarks/photos.py) and times, each in a
fresh child process so that imports and peak memory do not leak between measurements:

  (a) loop:   a plain loop: read + sha256 + full decode (the ingest's own decode function)
              + tf.Example + one TFRecord file. The baseline.
  (b) ingest_1_thread: components.ingest.run on the DirectRunner (FnApiRunner, 1 worker), threads=1.
  (c) ingest_1_worker: the same with the default threads (one per CPU: 2 here).
  (d) ingest_2_processes: --direct_num_workers=2 --direct_running_mode=multi_processing (default threads).
  (--direct_running_mode=multi_threading is not measured: the ingest refuses it, it loses records
   in Beam 2.77; see components/common/beam_runner.py.)
  (f) ingest_dask_2_workers: Beam's DaskRunner on a local dask.distributed cluster (a scheduler and
      two single-threaded workers, separate processes started before the clock: benchmarks/clusters.py).
  (g) ingest_portable_2_workers: Beam's PortableRunner against a local job service with an external
      SDK worker pool asked for 2 workers (--direct_num_workers=2), started likewise.
  For (f) and (g) the peak RSS of each process tree (driver, scheduler or job service, workers or
  worker pool) is reported beside their sum; the clusters are fresh for each measurement.

Timings are wall-clock seconds of the work itself (after imports), so pipeline construction,
worker start-up, planning, the shard copy, the TFDS metadata and publishing are inside (b)-(d).
Peak RSS is the largest sum of RSS over the child's process tree, sampled every 50 ms. Also timed
once per run: (e) beam_floor_2_processes, an empty Beam pipeline (2,000 integers through a
Reshuffle) with 2 worker processes: the fixed cost of that mode, which no ingest can go below.
Targets (issue 11) are listed in the JSON with whether each was met; the machine's load average is
recorded, because the cores are shared.
"""

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

TWO_PROCESSES = ["--direct_num_workers=2", "--direct_running_mode=multi_processing"]
MODES = {  # name: (Beam flags, IngestConfig.threads)
    "ingest_1_thread": ([], 1),
    "ingest_1_worker": ([], 0),
    "ingest_2_processes": (TWO_PROCESSES, 0),
}
DISTRIBUTED = {"ingest_dask_2_workers": "dask", "ingest_portable_2_workers": "portable"}  # name: cluster kind


def _files(data_dir):
    return sorted(os.path.join(root, name) for root, _, names in os.walk(data_dir) for name in names)


def _loop(data_dir, out_dir):
    """(a): the simplest correct single-process ingest of the same files."""
    import tensorflow as tf

    from components.ingest.decode import Decoded, decode_and_normalise

    files = _files(data_dir)
    start = time.perf_counter()
    os.makedirs(out_dir)
    with tf.io.TFRecordWriter(os.path.join(out_dir, "all.tfrecord")) as writer:
        for path in files:
            with open(path, "rb") as f:
                data = f.read()
            sha = hashlib.sha256(data).hexdigest()
            result = decode_and_normalise(data)
            assert isinstance(result, Decoded), path
            feature = {
                "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[result.data])),
                "sha256": tf.train.Feature(bytes_list=tf.train.BytesList(value=[sha.encode()])),
                "height": tf.train.Feature(int64_list=tf.train.Int64List(value=[result.height])),
                "width": tf.train.Feature(int64_list=tf.train.Int64List(value=[result.width])),
            }
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    return len(files), time.perf_counter() - start


def _ingest(data_dir, out_dir, beam_args, threads):
    from apache_beam.options.pipeline_options import PipelineOptions

    from components.common.beam_runner import load_runner_options
    from components.ingest import IngestConfig, run

    load_runner_options(beam_args)
    start = time.perf_counter()
    result = run(IngestConfig(data_dir=data_dir, threads=threads), out_dir, beam_options=PipelineOptions(beam_args))
    assert result.kept == result.found, result.summary()
    return result.kept, time.perf_counter() - start


def _beam_floor(data_dir, out_dir):
    """(e): the same Beam mode with nothing to do: its start-up and shut-down alone."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from components.common.beam_runner import make_pipeline

    start = time.perf_counter()
    pipeline = make_pipeline(PipelineOptions(TWO_PROCESSES))
    _ = (
        pipeline
        | beam.Create(list(range(2000)), reshuffle=False)
        | beam.Reshuffle()
        | beam.Map(lambda x: x)
        | beam.combiners.Count.Globally()
    )
    pipeline.run().wait_until_finish()
    return 2000, time.perf_counter() - start


def child(mode, data_dir, out_dir, cluster_flags):
    """Run one measurement in this process; print {"images", "seconds"}."""
    if mode == "loop":
        images, seconds = _loop(data_dir, out_dir)
    elif mode == "beam_floor_2_processes":
        images, seconds = _beam_floor(data_dir, out_dir)
    elif mode in DISTRIBUTED:
        images, seconds = _ingest(data_dir, out_dir, cluster_flags, 0)
    else:
        images, seconds = _ingest(data_dir, out_dir, *MODES[mode])
    print(json.dumps({"images": images, "seconds": seconds}))


def _tree_rss(proc):
    import psutil

    total = 0
    try:
        tree = [proc] + proc.children(recursive=True)
    except psutil.Error:  # the child has just exited
        return 0
    for p in tree:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def measure(mode, data_dir, work_dir):
    """Run `mode` in a child process (on a fresh local cluster for DISTRIBUTED modes)."""
    if mode not in DISTRIBUTED:
        return _measure(mode, data_dir, work_dir)
    from benchmarks.clusters import local_cluster

    log_dir = os.path.join(work_dir, f"cluster-{mode}")
    os.makedirs(log_dir, exist_ok=True)
    with local_cluster(DISTRIBUTED[mode], log_dir, workers=2) as (flags, processes):
        return _measure(mode, data_dir, work_dir, flags, processes)


def _measure(mode, data_dir, work_dir, cluster_flags=(), cluster=None):
    """Return images/s, seconds and peak tree RSS (MiB) of the child; per process tree with a cluster."""
    import psutil

    out_dir = os.path.join(work_dir, f"out-{mode}")
    shutil.rmtree(out_dir, ignore_errors=True)
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.ingest",
        "--child",
        mode,
        data_dir,
        out_dir,
        json.dumps(list(cluster_flags)),
    ]
    log_path = os.path.join(work_dir, f"{mode}.log")
    log = open(log_path, "w")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True)
    ps, peak, done = psutil.Process(proc.pid), [0], threading.Event()
    trees = {"driver": ps, **{name: psutil.Process(p.pid) for name, p in (cluster or {}).items()}}
    peaks = dict.fromkeys(trees, 0)

    def sample():
        while not done.is_set():
            sizes = {name: _tree_rss(p) for name, p in trees.items()}
            for name, size in sizes.items():
                peaks[name] = max(peaks[name], size)
            peak[0] = max(peak[0], sum(sizes.values()))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, _ = proc.communicate()
    done.set()
    sampler.join()
    log.close()
    shutil.rmtree(out_dir, ignore_errors=True)
    if proc.returncode != 0:
        with open(log_path) as f:
            tail = f.read()[-2000:]
        raise RuntimeError(f"{mode} failed with exit code {proc.returncode}; the end of its log:\n{tail}")
    got = json.loads(stdout.strip().splitlines()[-1])
    result = {
        "images_per_s": round(got["images"] / got["seconds"], 1),
        "seconds": round(got["seconds"], 2),
        "peak_rss_mib": round(peak[0] / 2**20, 1),
    }
    if cluster:
        result["peak_rss_mib_per_process"] = {name: round(size / 2**20, 1) for name, size in peaks.items()}
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 20000])
    parser.add_argument("--work-dir", default=None, help="where the generated photos go (default: a temp dir)")
    parser.add_argument("--modes", nargs="+", default=None, help="measure only these modes (default: all; loop always)")
    parser.add_argument("--child", nargs=4, metavar=("MODE", "DATA_DIR", "OUT_DIR", "FLAGS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child[:3], json.loads(args.child[3]))
        return
    from benchmarks.photos import generate_photos

    work_dir = args.work_dir or tempfile.mkdtemp(prefix="bench-ingest-")
    report = {"cpus": os.cpu_count(), "load_average_before": os.getloadavg(), "sizes": {}}
    for n in args.sizes:
        data_dir = os.path.join(work_dir, f"photos-{n}")
        if not os.path.isdir(data_dir):
            generate_photos(data_dir, n)
        runs = {}
        for mode in ["loop", *(m for m in [*MODES, *DISTRIBUTED] if args.modes is None or m in args.modes)]:
            try:
                runs[mode] = measure(mode, data_dir, work_dir)
            except RuntimeError as e:  # reported, not hidden: the other modes still run
                runs[mode] = {"error": str(e)[-600:], "images_per_s": None}
        base = runs["loop"]["images_per_s"]
        for mode in runs:
            if mode != "loop" and base and runs[mode]["images_per_s"]:
                runs[mode]["ratio_to_loop"] = round(runs[mode]["images_per_s"] / base, 3)
        report["sizes"][n] = runs
    report["beam_floor_2_processes_s"] = measure("beam_floor_2_processes", work_dir, work_dir)["seconds"]
    small, large = report["sizes"][min(args.sizes)], report["sizes"][max(args.sizes)]

    def at_least(runs, mode, ratio):
        got = runs.get(mode, {}).get("ratio_to_loop")  # None: not measured (--modes) or failed
        return [got, got is not None and got >= ratio]

    rss = [
        small.get("ingest_2_processes", {}).get("peak_rss_mib"),
        large.get("ingest_2_processes", {}).get("peak_rss_mib"),
    ]
    flat = round(rss[1] / rss[0], 3) if all(rss) else None
    report["targets"] = {
        f"{max(args.sizes)}: ingest_2_processes >= 1.6x loop": at_least(large, "ingest_2_processes", 1.6),
        f"{max(args.sizes)}: ingest_1_worker >= 0.9x loop": at_least(large, "ingest_1_worker", 0.9),
        f"{min(args.sizes)}: ingest_2_processes >= 1.0x loop": at_least(small, "ingest_2_processes", 1.0),
        "peak RSS of ingest_2_processes <= 1536 MiB": [max(r or 0 for r in rss), all(rss) and max(rss) <= 1536],
        "peak RSS of ingest_2_processes flat (largest <= 1.25x smallest)": [flat, flat is not None and flat <= 1.25],
    }
    report["load_average_after"] = os.getloadavg()
    if not args.work_dir:
        shutil.rmtree(work_dir, ignore_errors=True)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
