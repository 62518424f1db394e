# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""The plugin's models in anomalib's get_model (anomalib benchmark, tiled ensemble)."""

import logging
import sys

import pytest
from anomalib.models import ALLOWED_MODULES, UnknownModelError, get_model
from anomalib.models import Patchcore as AnomalibPatchcore
from anomalib.pipelines.benchmark.generator import BenchmarkJobGenerator

from anomalib_hvq.models.hvq_trans import HVQTrans
from anomalib_hvq.models.uniad import UniAD
from anomalib_hvq.registry import main, register_with_anomalib

HVQ_TINY = {"backbone": "tf_efficientnet_lite0", "pre_trained": False, "hidden_dim": 16, "num_layers": 1}
HVQ_TINY |= {"num_heads": 2, "ffn_dim": 32, "num_codes": 8}
UNIAD_TINY = {"backbone": "tf_efficientnet_lite0", "pre_trained": False, "hidden_dim": 16, "num_heads": 2}
UNIAD_TINY |= {"num_encoder_layers": 1, "num_decoder_layers": 1, "ffn_dim": 32}


@pytest.fixture(autouse=True)
def registered() -> None:
    register_with_anomalib(HVQTrans, UniAD)


@pytest.mark.parametrize(
    ("class_path", "init_args", "expected"),
    [
        ("anomalib_hvq.HVQTrans", HVQ_TINY, HVQTrans),
        ("anomalib_hvq.models.hvq_trans.HVQTrans", HVQ_TINY, HVQTrans),
        ("anomalib_hvq.models.uniad.UniAD", UNIAD_TINY, UniAD),
        ("anomalib_hvq.models.uniad.lightning_model.UniAD", UNIAD_TINY, UniAD),
        ("HVQTrans", HVQ_TINY, HVQTrans),
        ("UniAD", UNIAD_TINY, UniAD),
    ],
)
def test_get_model_builds_plugin_models_from_class_paths(class_path, init_args, expected) -> None:
    model = get_model({"class_path": class_path, "init_args": init_args})
    assert type(model) is expected
    assert model.hparams["hidden_dim"] == 16


def test_get_model_by_name() -> None:
    assert type(get_model("hvq_trans", **HVQ_TINY)) is HVQTrans
    assert type(get_model("uniad", **UNIAD_TINY)) is UniAD


def test_whitelist_is_extended_only_by_the_plugin_packages() -> None:
    assert {"anomalib_hvq", "anomalib_hvq.models", "anomalib_hvq.models.uniad"} <= ALLOWED_MODULES
    assert not any(module.split(".")[0] not in {"anomalib", "anomalib_hvq"} for module in ALLOWED_MODULES)
    with pytest.raises(UnknownModelError):
        get_model({"class_path": "os.path.join"})


def test_anomalib_names_are_not_shadowed(caplog: pytest.LogCaptureFixture) -> None:
    impostor = type("Patchcore", (), {"__module__": "anomalib_hvq.impostor"})
    with caplog.at_level(logging.WARNING):
        register_with_anomalib(impostor)
    import anomalib.models

    assert anomalib.models.Patchcore is AnomalibPatchcore
    assert "already has a model named Patchcore" in caplog.text
    ALLOWED_MODULES.discard("anomalib_hvq.impostor")


def test_anomalib_benchmark_jobs_take_plugin_models(tiny_mvtec_root) -> None:
    config = {
        "seed": 0,
        "model": {"class_path": "anomalib_hvq.models.uniad.UniAD", "init_args": UNIAD_TINY},
        "data": {"class_path": "MVTecAD", "init_args": {"root": str(tiny_mvtec_root), "category": "bottle"}},
    }
    jobs = list(BenchmarkJobGenerator("cpu").generate_jobs(config, None))
    assert len(jobs) == 1 and type(jobs[0].model) is UniAD


def test_cli_entry_point_registers_before_running_anomalib(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = {}

    def fake_cli() -> None:
        seen["argv"] = sys.argv[1:]
        seen["allowed"] = "anomalib_hvq.models.uniad" in ALLOWED_MODULES

    monkeypatch.setattr("anomalib.cli.cli.main", fake_cli)
    monkeypatch.setattr(sys, "argv", ["registry", "benchmark", "--config", "bench.yaml"])
    ALLOWED_MODULES.discard("anomalib_hvq.models.uniad")
    main()
    assert seen == {"argv": ["benchmark", "--config", "bench.yaml"], "allowed": True}
