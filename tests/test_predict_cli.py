"""`python -m pipeline.predict`: labels sign-language photos with a pushed model and with its int8 TFLite."""

import csv
import io
import json
import os

import pytest

import components.push
from pipeline import predict
from tests import export_models

pytestmark = pytest.mark.slow  # seconds to minutes per test: the full tier only (pytest.ini)


@pytest.fixture(scope="module")
def pushed(tmp_path_factory, sign_digits_dir, shared_weights_dir):
    art = export_models.sign_digits_artifacts(tmp_path_factory, sign_digits_dir, shared_weights_dir)
    root = tmp_path_factory.mktemp("predict")
    blessed = export_models.blessing_dir(root / "evaluate", True)
    serving = str(root / "serving")
    result = components.push.run(components.push.PushConfig(model_name="digits"), art["export"], blessed, serving)
    # the test split's photos, straight from the shared folder (the manifest lists them)
    with open(os.path.join(art["ingest"], "manifest.csv")) as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == "test"]
    paths = [str(sign_digits_dir / r["path"]) for r in rows]
    truth = {p: r["label_text"] for p, r in zip(paths, rows)}
    return {"serving": serving, "version": result.path, "paths": paths, "truth": truth}


def _jsonl(capsys):
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_pushed_model_and_its_int8_tflite_label_sign_language_photos(pushed, capsys):
    assert predict.main(["digits", *pushed["paths"], "--serving-dir", pushed["serving"], "--top-k", "2"]) == 0
    saved = _jsonl(capsys)
    assert [r["path"] for r in saved] == pushed["paths"]
    assert all(len(r["labels"]) == 2 and r["scores"][0] >= r["scores"][1] for r in saved)
    accuracy = sum(r["labels"][0] == pushed["truth"][r["path"]] for r in saved) / len(saved)
    assert accuracy > 0.25  # chance is 0.1

    int8 = os.path.join(pushed["version"], "assets.extra", "tflite", "model_int8.tflite")
    assert predict.main([int8, *pushed["paths"], "--threads", "1"]) == 0
    quantized = _jsonl(capsys)
    agree = sum(a["labels"][0] == b["labels"][0] for a, b in zip(saved, quantized)) / len(saved)
    assert agree >= 0.8


def test_the_pushed_onnx_model_answers_as_the_saved_model(pushed, capsys):
    """`--model-format onnx` scores the version's assets.extra/model.onnx with ONNX Runtime."""
    args = ["digits", *pushed["paths"], "--serving-dir", pushed["serving"], "--top-k", "1"]
    assert predict.main(args) == 0
    saved = _jsonl(capsys)
    assert predict.main([*args, "--model-format", "onnx"]) == 0
    onnx = _jsonl(capsys)
    assert [r["path"] for r in onnx] == pushed["paths"]
    agree = sum(a["labels"][0] == b["labels"][0] for a, b in zip(saved, onnx)) / len(saved)
    assert agree >= 0.98  # parity is 1e-4: only a near-tie could flip a top class
    assert max(abs(a["scores"][0] - b["scores"][0]) for a, b in zip(saved, onnx) if a["labels"] == b["labels"]) < 1e-3


def test_a_format_the_version_does_not_hold_is_a_usage_error(pushed, capsys):
    args = ["digits", pushed["paths"][0], "--serving-dir", pushed["serving"], "--model-format", "tflite_float16"]
    assert predict.main(args) == 2
    assert (
        "holds no tflite_float16 model; it holds: saved_model, tflite_float32, tflite_int8, onnx"
        in capsys.readouterr().err
    )


def test_folders_csv_and_an_undecodable_file(pushed, tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    for path in pushed["paths"][:3]:
        (folder / os.path.basename(path)).write_bytes(open(path, "rb").read())
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    code = predict.main([pushed["version"], str(folder), "--format", "csv", "--top-k", "1"])
    captured = capsys.readouterr()
    assert code == 3 and "1 of 4 images could not be decoded" in captured.err
    rows = list(csv.DictReader(io.StringIO(captured.out)))
    assert list(rows[0]) == ["path", "label", "label_1", "score_1", "error"]
    broken = [r for r in rows if r["path"].endswith("broken.jpg")]
    assert broken[0]["error"].startswith("cannot decode image") and broken[0]["label_1"] == ""
    assert sum(1 for r in rows if r["label_1"] and not r["error"]) == 3


def test_unknown_model_is_a_usage_error(tmp_path, capsys):
    assert predict.main([str(tmp_path / "nothing"), str(tmp_path)]) == 2
    assert "not found" in capsys.readouterr().err
