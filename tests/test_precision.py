"""`precision: auto` on CPUs: measured on bfloat16 CPUs, cached per key, float32 elsewhere (issue 10)."""

import json

import pytest

from components.train import precision
from components.train.devices import choose_precision

AMX_CPUINFO = (
    "model name\t: Intel(R) Xeon(R) Platinum 8480C\nflags\t\t: fpu sse avx512f avx512_bf16 amx_bf16 amx_tile\n"
)
EPYC_CPUINFO = "model name\t: AMD EPYC 7B12\nflags\t\t: fpu sse avx2 avx512f\n"


@pytest.fixture(autouse=True)
def measuring(monkeypatch):
    monkeypatch.setenv(precision.ENV, "measure")  # conftest turns measuring off for every other test


def test_cpu_flags_and_model_come_from_cpuinfo():
    assert precision.cpu_bf16_flags(AMX_CPUINFO) == ["amx_bf16", "avx512_bf16"]
    assert precision.cpu_bf16_flags(EPYC_CPUINFO) == []
    assert precision.cpu_model(AMX_CPUINFO) == "Intel(R) Xeon(R) Platinum 8480C"


def test_the_faster_policy_wins_and_is_measured_once_per_key(tmp_path):
    path = str(tmp_path / "precision.json")
    calls = []

    def resnet():  # the rates measured on an AMX Xeon (issue 10): bfloat16 1.78x faster
        calls.append("resnet")
        return {"float32": 10.0, "mixed_bfloat16": 17.8}

    first = precision.decide("xeon|ResNet50V2|160", ["amx_bf16"], resnet, path)
    assert first["policy"] == "mixed_bfloat16" and not first["cached"] and "1.78x" in first["reason"]
    assert first["margin"] == precision.MARGIN
    again = precision.decide("xeon|ResNet50V2|160", ["amx_bf16"], resnet, path)
    assert again["policy"] == "mixed_bfloat16" and again["cached"] and calls == ["resnet"]

    mobilenet = precision.decide(
        "xeon|MobileNetV2|96", ["amx_bf16"], lambda: {"float32": 100.0, "mixed_bfloat16": 72.0}, path
    )
    assert mobilenet["policy"] == "float32" and mobilenet["rates"] == {"float32": 100.0, "mixed_bfloat16": 72.0}
    assert set(json.load(open(path))) == {"xeon|ResNet50V2|160", "xeon|MobileNetV2|96"}


def test_bfloat16_needs_the_margin_and_a_cached_tie_is_decided_again(tmp_path):
    path = str(tmp_path / "precision.json")
    tie = precision.decide(
        "epyc|MobileNetV2|96", ["avx512_bf16"], lambda: {"float32": 50.0, "mixed_bfloat16": 50.0}, path
    )
    assert tie["policy"] == "float32" and "1.00x" in tie["reason"]
    just_below = precision.decide("k2", ["amx_bf16"], lambda: {"float32": 100.0, "mixed_bfloat16": 114.0}, path)
    at_margin = precision.decide("k3", ["amx_bf16"], lambda: {"float32": 100.0, "mixed_bfloat16": 115.0}, path)
    assert just_below["policy"] == "float32" and at_margin["policy"] == "mixed_bfloat16"
    # a cache written before the margin existed said bfloat16 for a tie: its rates are judged again
    json.dump(
        {"old": {"policy": "mixed_bfloat16", "rates": {"float32": 50.0, "mixed_bfloat16": 50.5}}}, open(path, "w")
    )
    old = precision.decide("old", ["amx_bf16"], lambda: pytest.fail("measured again"), path)
    assert old["policy"] == "float32" and old["cached"]


def test_no_bf16_units_or_the_switch_means_float32_without_measuring(tmp_path, monkeypatch):
    def must_not_measure():
        raise AssertionError("measured")

    assert precision.decide("k", [], must_not_measure, str(tmp_path / "p.json"))["policy"] == "float32"
    monkeypatch.setenv(precision.ENV, "float32")
    assert precision.decide("k", ["amx_bf16"], must_not_measure, str(tmp_path / "p.json"))["policy"] == "float32"


def test_a_damaged_cache_is_measured_again(tmp_path):
    path = tmp_path / "precision.json"
    path.write_text("{not json")
    decision = precision.decide("k", ["avx512_bf16"], lambda: {"float32": 1.0, "mixed_bfloat16": 2.0}, str(path))
    assert decision["policy"] == "mixed_bfloat16" and json.loads(path.read_text())["k"]["policy"] == "mixed_bfloat16"


def test_gpus_keep_mixed_float16():
    assert choose_precision("auto", [(8, 0)]) == "mixed_float16"
    assert choose_precision("mixed_bfloat16", []) == "mixed_bfloat16"


@pytest.mark.slow  # builds and times a tiny MobileNetV2 under both policies
def test_measure_rates_times_both_policies():
    rates = precision.measure_rates("MobileNetV2", 0.35, 32, 4, steps=1)
    assert set(rates) == set(precision.POLICIES) and all(r > 0 for r in rates.values())
