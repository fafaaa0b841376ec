"""How many val images a temperature needs: temperature scaling fitted on n val images, against none.

    python -m benchmarks.calibration_sample [--work DIR] [--model TRAIN_DIR --ingest INGEST_DIR ...]
                                            [--draws 300] [--out benchmarks/calibration_sample_results.json]

Without --model: the sign-language folder is ingested and the default recipe trained from the
shared pretrained backbone (real photos). With --model/--ingest pairs: those trained models too
(e.g. a nightly benchmark's, on 2,000 val images). For each model the float logits of its whole val
and test splits are computed once; then, for each sample size n, `--draws` random draws of n val
images each fit a temperature (components.common.confidence.fit_temperature, as the export does)
and the test NLL and ECE with it are compared with T = 1 (no calibration) and with T fitted on the
whole val split. Reported per n: the share of draws whose calibration made the test NLL worse than
none, the median and 5-95% range of T, and the median test NLL/ECE. The export's minimum
(components.common.confidence.MIN_CALIBRATION_EXAMPLES) is the smallest n at which at most 5% of
draws are worse than no calibration on every model measured.
"""

import argparse
import json
import os
import time

import numpy as np

from benchmarks.shared import PRETRAINED, SIGN_DIGITS, stamp

SIZES = (5, 10, 15, 20, 30, 40, 50, 75, 100, 150, 200, 300, 500, 1000)


def _sign_digits_model(work: str) -> tuple:
    from components.ingest import IngestConfig
    from components.ingest import run as ingest
    from components.train import TrainConfig
    from components.train import run as train

    ingest_dir, train_dir = os.path.join(work, "ingest"), os.path.join(work, "train")
    if not os.path.exists(ingest_dir):
        ingest(IngestConfig(data_dir=SIGN_DIGITS), ingest_dir)
    if not os.path.exists(train_dir):
        train(TrainConfig(weights=PRETRAINED, warm_start="none"), ingest_dir, train_dir)
    return train_dir, ingest_dir


def _logits(train_dir: str, ingest_dir: str) -> dict:
    """{split: (float64 logits, labels)} of the trained Keras model (no temperature) on val and test."""
    import keras

    from components.common.image_ops import preprocess
    from components.common.trained_model import HEAD_DENSE, float32_rebuild, load_model
    from schemas.artifacts import Examples, Model
    from schemas.split_reader import batches

    trained = float32_rebuild(load_model(Model(train_dir).model_path()))  # as the export calibrates it
    logits_model = keras.Model(trained.inputs, trained.get_layer(HEAD_DENSE).output)
    size = tuple(trained.input_shape[1:3])
    out = {}
    for split in ("val", "test"):
        rows, labels = [], []
        for _serialized, images, batch_labels in batches(Examples(ingest_dir), split):
            rows.append(logits_model.predict(preprocess(images, size), verbose=0, batch_size=64))
            labels.extend(batch_labels)
        out[split] = (np.concatenate(rows).astype(np.float64), np.asarray(labels, np.int64))
    return out


def _measure(logits: dict, draws: int, seed: int = 0) -> dict:
    from scipy import special

    from components.common import confidence

    (val, val_y), (test, test_y) = logits["val"], logits["test"]
    rng = np.random.default_rng(seed)

    def test_scores(temperature: float) -> tuple:
        p = special.softmax(test / temperature, axis=1)
        return confidence.nll(p, test_y), confidence.ece(p, test_y)

    none_nll, none_ece = test_scores(1.0)
    full_t = confidence.fit_temperature(val, val_y)
    full_nll, full_ece = test_scores(full_t)
    rows = []
    for n in [s for s in SIZES if s < len(val_y)]:
        ts, nlls, eces = [], [], []
        for _ in range(draws):
            pick = rng.choice(len(val_y), size=n, replace=False)
            t = confidence.fit_temperature(val[pick], val_y[pick])
            test_nll, test_ece = test_scores(t)
            ts.append(t)
            nlls.append(test_nll)
            eces.append(test_ece)
        ts, nlls = np.array(ts), np.array(nlls)
        rows.append(
            {
                "n": n,
                "worse_than_none": round(float(np.mean(nlls > none_nll)), 3),
                "temperature_median": round(float(np.median(ts)), 3),
                "temperature_5_95": [round(float(np.percentile(ts, 5)), 3), round(float(np.percentile(ts, 95)), 3)],
                "at_search_bound": round(float(np.mean((ts < 0.051) | (ts > 19.9))), 3),
                "test_nll_median": round(float(np.median(nlls)), 4),
                "test_nll_95th": round(float(np.percentile(nlls, 95)), 4),
                "test_ece_median": round(float(np.median(eces)), 4),
            }
        )
    return {
        "val_images": len(val_y),
        "test_images": len(test_y),
        "test_accuracy": round(float(np.mean(test.argmax(axis=1) == test_y)), 4),
        "no_calibration": {"test_nll": round(none_nll, 4), "test_ece": round(none_ece, 4)},
        "whole_val": {"temperature": round(full_t, 3), "test_nll": round(full_nll, 4), "test_ece": round(full_ece, 4)},
        "by_sample_size": rows,
    }


def _smallest_safe(models: dict, share: float = 0.05):
    """The smallest n at which at most `share` of draws are worse than no calibration, for every model."""
    sizes = sorted({row["n"] for m in models.values() for row in m["by_sample_size"]})
    for n in sizes:
        rows = [row for m in models.values() for row in m["by_sample_size"] if row["n"] == n]
        measured = [m for m in models.values() if any(r["n"] == n for r in m["by_sample_size"])]
        if len(measured) == len(models) and all(row["worse_than_none"] <= share for row in rows):
            return n
    return None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.calibration_sample", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--work", default="/tmp/transferline-calibration-sample")
    parser.add_argument("--model", action="append", default=[], help="a train output directory (repeatable)")
    parser.add_argument("--ingest", action="append", default=[], help="its ingest directory, in the same order")
    parser.add_argument("--draws", type=int, default=300)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "calibration_sample_results.json"))
    args = parser.parse_args(argv)
    if len(args.model) != len(args.ingest):
        parser.error("give one --ingest per --model")
    os.makedirs(args.work, exist_ok=True)
    started = time.time()
    pairs = {"sign-language digits (real photos, default recipe)": _sign_digits_model(args.work)}
    pairs.update({os.path.abspath(m): (m, i) for m, i in zip(args.model, args.ingest)})
    models = {name: _measure(_logits(*pair), args.draws) for name, pair in pairs.items()}
    result = {
        **stamp(__doc__, "calibration_sample", argv),
        "draws": args.draws,
        "models": models,
        "smallest_n_worse_than_none_at_most_5pct": _smallest_safe(models),
        "seconds": round(time.time() - started, 1),
    }
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    print(json.dumps({"smallest_n": result["smallest_n_worse_than_none_at_most_5pct"]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
