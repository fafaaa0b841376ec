"""`python -m pipeline.predict MODEL IMAGES_OR_FOLDERS...`: top-k labels and scores per image.

MODEL is a SavedModel or export directory, a model file (`.tflite`, `.onnx`), or NAME[/VERSION] of a pushed model
(with --serving-dir). Folders are searched recursively for .jpg/.jpeg/.png/.gif/.bmp/.webp/.tif/.tiff files; a TIFF is
converted by the ingest's normaliser (components/ingest/decode.py) first, as TensorFlow cannot decode it.
Output (stdout): one JSON object per line {"path", "label", "labels", "scores"}, or CSV
(path,label,label_1,score_1,...). `label` is the top class, or the model's unknown label when the
model abstains (the abstention thresholds it was exported with). An image that cannot be decoded gets {"path", "error"} (CSV: an
`error` column) and the exit code is then 3; 2 means a usage error, 1 an unexpected failure.
"""

import argparse
import csv
import json
import os
import sys

from components.common import formats
from components.common.errors import EXIT_DATA, EXIT_OK, DataError
from pipeline.cli import Parser, exits_with_codes

# TensorFlow, NumPy and the model loader are imported by the functions that use them, after the
# arguments are parsed: `--help` and a usage error answer at once instead of after TensorFlow's
# seconds of import.


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m pipeline.predict", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "model", help="SavedModel/export dir, model file (.tflite, .onnx), or NAME[/VERSION] with --serving-dir"
    )
    parser.add_argument("inputs", nargs="+", help="image files and/or folders of images")
    parser.add_argument("--serving-dir", help="TF Serving directory holding NAME/VERSION/")
    parser.add_argument(
        "--model-format",
        choices=tuple(formats.FORMATS),
        help="with an export or pushed version, score this format of it (default: the SavedModel)",
    )
    parser.add_argument("--top-k", type=int, default=3, help="labels per image (default: 3)")
    parser.add_argument("--format", choices=("jsonl", "csv"), default="jsonl", help="output format (default: jsonl)")
    parser.add_argument("--threads", type=int, help="TFLite or ONNX Runtime threads (default: the runtime's choice)")
    parser.add_argument("--batch-size", type=int, default=32, help="images per batch (default: 32)")
    return parser


def parse_args(argv=None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.top_k < 1 or args.batch_size < 1:
        parser.error("--top-k and --batch-size must be >= 1")
    return args


def image_paths(inputs: list) -> list:
    """Files as given, folders expanded (recursively, sorted) to their image files."""
    import tensorflow as tf

    from components.common.image_ops import IMAGE_EXTENSIONS

    paths = []
    for item in inputs:
        try:
            if tf.io.gfile.isdir(item):
                for root, _dirs, files in sorted(tf.io.gfile.walk(item)):
                    paths.extend(os.path.join(root, f) for f in sorted(files) if f.lower().endswith(IMAGE_EXTENSIONS))
            elif tf.io.gfile.exists(item) or os.path.islink(item):  # a dangling link: reported in its row
                paths.append(item)
            else:
                raise DataError(f"{item}: no such file or folder")
        except tf.errors.OpError as e:  # e.g. an https:// URL: TensorFlow has no filesystem for it
            raise DataError(
                f"{item}: cannot be read ({e.message.splitlines()[0]}): give a local path, or one "
                "on a filesystem TensorFlow reads (gs://, s3://, hdfs://); download URLs first"
            ) from None
    if not paths:
        raise DataError(f"no images found in {inputs} (looked for {', '.join(IMAGE_EXTENSIONS)})")
    return paths


def _read(path: str):
    """(bytes, None) or (None, why it cannot be read): a dangling link or unreadable file is one row's error."""
    import tensorflow as tf

    try:
        with tf.io.gfile.GFile(path, "rb") as f:
            return f.read(), None
    except (tf.errors.OpError, OSError) as e:
        return None, f"cannot read the file: {getattr(e, 'message', str(e)).splitlines()[0]}"


def _score(model, paths: list) -> list:
    """(path, (probabilities, answer) or None, error or None) for each path; a bad image does not stop the rest.
    model: a pipeline.opened_model.OpenedModel."""
    import tensorflow as tf

    read = [_read(p) for p in paths]
    readable = [(path, data) for path, (data, error) in zip(paths, read) if error is None]
    scored = {}
    try:
        if readable:
            scored = dict(zip([p for p, _ in readable], zip(*model.answer_encoded([d for _, d in readable]))))
    except tf.errors.InvalidArgumentError:  # find the undecodable image(s) one by one
        for path, data in readable:
            try:
                probabilities, answers = model.answer_encoded([data])
                scored[path] = (probabilities[0], answers[0])
            except tf.errors.InvalidArgumentError:
                pass
    undecodable = "cannot decode image: not a JPEG, PNG, GIF, BMP, WebP or TIFF file, or truncated"
    return [
        (path, scored.get(path), error or (None if path in scored else undecodable))
        for path, (_, error) in zip(paths, read)
    ]


@exits_with_codes
def main(argv=None) -> int:
    args = parse_args(argv)
    import numpy as np

    from pipeline.opened_model import OpenedModel

    model = OpenedModel(args.model, args.serving_dir, args.threads, args.batch_size, args.model_format)
    paths = image_paths(args.inputs)
    k = min(args.top_k, len(model.labels))
    writer = csv.writer(sys.stdout, lineterminator="\n") if args.format == "csv" else None
    if writer:
        writer.writerow(
            ["path", "label"] + [f"{c}_{i}" for i in range(1, k + 1) for c in ("label", "score")] + ["error"]
        )
    failed = 0
    for start in range(0, len(paths), args.batch_size):
        for path, scored, error in _score(model, paths[start : start + args.batch_size]):
            failed += error is not None
            probabilities, answer = scored or (None, "")
            top = [] if probabilities is None else np.argsort(-probabilities, kind="stable")[:k]
            labels = [model.labels[i] for i in top]
            scores = [round(float(probabilities[i]), 6) for i in top]
            if writer:
                cells = [x for pair in zip(labels, scores) for x in pair] or [""] * (2 * k)
                writer.writerow([path, answer, *cells, error or ""])
            else:
                row = (
                    {"path": path, "error": error}
                    if error
                    else {"path": path, "label": answer, "labels": labels, "scores": scores}
                )
                print(json.dumps(row))
    if failed:
        print(
            f"error: {failed} of {len(paths)} images could not be decoded or read (see the error fields)",
            file=sys.stderr,
        )
        return EXIT_DATA
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
