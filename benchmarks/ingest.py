"""Ingest throughput and memory against a plain one-process loop, measured in the same run.

    python -m benchmarks.ingest [--sizes 2000 20000] [--work-dir DIR]

For each size it generates photo-like 500x375 JPEGs (benchmarks/photos.py) and times, each in a
fresh child process so that imports and peak memory do not leak between measurements:

  (a) loop:   a plain loop: read + sha256 + full decode (the ingest's own decode function)
              + tf.Example + one TFRecord file. The baseline.
  (b) ingest_1_worker:   components.ingest.run on the DirectRunner (FnApiRunner, 1 worker).
  (c) ingest_2_processes: the same with --direct_num_workers=2 --direct_running_mode=multi_processing.
  (--direct_running_mode=multi_threading is not measured: the ingest refuses it, it loses records
   in Beam 2.77; see components/ingest/beam_runner.py.)

Timings are wall-clock seconds of the work itself (after imports), so pipeline construction,
worker start-up, planning, shard finalisation and metadata are inside (b)-(c). Peak RSS is the
largest sum of RSS over the child's process tree, sampled every 50 ms. Targets (issue 2):
(b) >= 0.8x (a), (c) >= 1.5x (a), peak RSS of (b) at the largest size <= 1.5x at the smallest.
The JSON also records the machine's load average, because the cores are shared.
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

MODES = {
    "ingest_1_worker": [],
    "ingest_2_processes": ["--direct_num_workers=2", "--direct_running_mode=multi_processing"],
}


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


def _ingest(data_dir, out_dir, beam_args):
    from apache_beam.options.pipeline_options import PipelineOptions

    from components.ingest import IngestConfig, run

    start = time.perf_counter()
    result = run(IngestConfig(data_dir=data_dir), out_dir, beam_options=PipelineOptions(beam_args))
    assert result.kept == result.found, result.summary()
    return result.kept, time.perf_counter() - start


def child(mode, data_dir, out_dir):
    """Run one measurement in this process; print {"images", "seconds"}."""
    images, seconds = _loop(data_dir, out_dir) if mode == "loop" else _ingest(data_dir, out_dir, MODES[mode])
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
    """Run `mode` in a child process; return its images/s, seconds and peak tree RSS (MiB)."""
    import psutil

    out_dir = os.path.join(work_dir, f"out-{mode}")
    shutil.rmtree(out_dir, ignore_errors=True)
    cmd = [sys.executable, "-m", "benchmarks.ingest", "--child", mode, data_dir, out_dir]
    log_path = os.path.join(work_dir, f"{mode}.log")
    log = open(log_path, "w")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True)
    ps, peak, done = psutil.Process(proc.pid), [0], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _tree_rss(ps))
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
    return {"images_per_s": round(got["images"] / got["seconds"], 1), "seconds": round(got["seconds"], 2),
            "peak_rss_mib": round(peak[0] / 2**20, 1)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 20000])
    parser.add_argument("--work-dir", default=None, help="where the generated photos go (default: a temp dir)")
    parser.add_argument("--child", nargs=3, metavar=("MODE", "DATA_DIR", "OUT_DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    from benchmarks.photos import generate_photos

    work_dir = args.work_dir or tempfile.mkdtemp(prefix="bench-ingest-")
    report = {"cpus": os.cpu_count(), "load_average_before": os.getloadavg(), "sizes": {}}
    for n in args.sizes:
        data_dir = os.path.join(work_dir, f"photos-{n}")
        if not os.path.isdir(data_dir):
            generate_photos(data_dir, n)
        runs = {}
        for mode in ["loop", *MODES]:
            try:
                runs[mode] = measure(mode, data_dir, work_dir)
            except RuntimeError as e:  # reported, not hidden: the other modes still run
                runs[mode] = {"error": str(e)[-600:], "images_per_s": None}
        base = runs["loop"]["images_per_s"]
        for mode in MODES:
            if base and runs[mode]["images_per_s"]:
                runs[mode]["ratio_to_loop"] = round(runs[mode]["images_per_s"] / base, 3)
        report["sizes"][n] = runs
    small, large = report["sizes"][min(args.sizes)], report["sizes"][max(args.sizes)]
    def ratio(runs, mode):
        return runs[mode].get("ratio_to_loop")

    rss_small, rss_large = small["ingest_1_worker"].get("peak_rss_mib"), large["ingest_1_worker"].get("peak_rss_mib")
    rss_ratio = round(rss_large / rss_small, 3) if rss_small and rss_large else None
    report["targets"] = {
        "ingest_1_worker >= 0.8x loop": [ratio(large, "ingest_1_worker"), (ratio(large, "ingest_1_worker") or 0) >= 0.8],
        "ingest_2_processes >= 1.5x loop": [ratio(large, "ingest_2_processes"),
                                            (ratio(large, "ingest_2_processes") or 0) >= 1.5],
        "peak RSS (1 worker) largest <= 1.5x smallest": [rss_ratio, rss_ratio is not None and rss_ratio <= 1.5],
    }
    report["load_average_after"] = os.getloadavg()
    if not args.work_dir:
        shutil.rmtree(work_dir, ignore_errors=True)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
