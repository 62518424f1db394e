# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""HVQ-Trans through anomalib's Engine: fit, test, predict, validate, checkpoints, export."""

from pathlib import Path

import pytest
import torch
from anomalib.deploy import ExportType, OpenVINOInferencer, TorchInferencer
from engine_helpers import tiny_datamodule, tiny_engine, tiny_model

from anomalib_hvq import ClassRouting, HVQTrans


def _predict_scores(engine, model, datamodule, ckpt_path=None) -> torch.Tensor:
    batches = engine.predict(model=model, datamodule=datamodule, ckpt_path=ckpt_path)
    return torch.cat([b.pred_score for b in batches])


def test_fit_takes_classes_from_the_datamodule_and_learns_per_class(trained) -> None:
    model, datamodule, _, ckpt = trained
    assert model.class_names == ["bottle", "carpet", "grid"] == datamodule.class_names
    assert model.model.num_classes == 3
    # Every class was seen: its router centroid and its codebook statistics moved.
    assert (model.model.router.count > 0).all()
    assert (model.model.quantizer.top.cluster_size.sum(-1) > 0).all()
    assert ckpt.is_file()


def test_test_reports_metrics(trained) -> None:
    model, datamodule, engine, _ = trained
    results = engine.test(model=model, datamodule=datamodule)[0]
    for key in ("image_AUROC", "pixel_AUROC"):
        assert 0.0 <= results[key] <= 1.0
    # Per-category metrics in the papers' protocol, beside anomalib's pooled ones.
    for category in ("bottle", "carpet", "grid", "mean"):
        assert 0.0 <= results[f"image_AUROC/{category}"] <= 1.0
        assert 0.0 <= results[f"AUPRO/{category}"] <= 1.0
    table = Path(engine.trainer.log_dir) / "per_category_metrics.md"
    assert table.is_file() and "| **mean** |" in table.read_text()
    # The run's report.html shows every test image here (2 normal + 2 defective per category, under the
    # 4 failure cases per list) as overlays on the real files.
    page = (Path(engine.trainer.log_dir) / "report.html").read_text()
    assert page.count("data:image/jpeg;base64,") == 3 * 4
    assert all(f"{folder}/" in page for folder in ("good", "broken", "contamination"))
    # The label-free router's accuracy against the true classes, with a confusion table.
    assert 0.0 <= results["routing_accuracy"] <= 1.0
    assert (Path(engine.trainer.log_dir) / "routing_confusion.md").is_file()


def test_every_class_routing_scores(trained) -> None:
    model, datamodule, engine, _ = trained
    results = {}
    try:
        for routing in ClassRouting:
            model.set_class_routing(routing)
            results[routing] = engine.test(model=model, datamodule=datamodule)[0]
    finally:
        model.set_class_routing(ClassRouting.CENTROID)
    assert model.model.routing is ClassRouting.CENTROID
    for metrics in results.values():
        assert 0.0 <= metrics["image_AUROC"] <= 1.0


def test_validate_runs(trained) -> None:
    model, datamodule, engine, _ = trained
    assert engine.validate(model=model, datamodule=datamodule) is not None


def test_validation_fits_the_score_calibration_on_its_normal_images(trained) -> None:
    model, datamodule, engine, _ = trained
    calibration = model.model.anomaly_map.calibration
    assert bool(calibration.fitted)
    weight = float(calibration.ot_weight)
    assert weight != 80.0
    seen = []
    original = model.model.fit_score_calibration
    model.model.fit_score_calibration = lambda batches: seen.extend(batches) or original(iter(seen))
    try:
        engine.validate(model=model, datamodule=datamodule)
    finally:
        model.model.fit_score_calibration = original
    labels = torch.cat([labels for _, _, labels in seen])
    assert len(labels) == len(datamodule.val_data)  # every validation image was offered; the model keeps label 0
    assert float(calibration.ot_weight) == weight  # same model, same images: the same calibration


def test_checkpoint_reload_gives_identical_predictions(trained) -> None:
    model, datamodule, engine, ckpt = trained
    reference = _predict_scores(engine, model, datamodule)
    loaded = HVQTrans.load_from_checkpoint(ckpt)
    assert loaded.class_names == model.class_names
    assert loaded.model.num_classes == 3
    torch.testing.assert_close(_predict_scores(engine, loaded, datamodule), reference)
    # A fresh default-built model restored by the trainer from the checkpoint path also agrees.
    fresh = tiny_model()
    torch.testing.assert_close(_predict_scores(engine, fresh, datamodule, ckpt_path=ckpt), reference)


def test_engine_test_from_checkpoint_on_a_fresh_model(trained, tmp_path: Path) -> None:
    _, datamodule, _, ckpt = trained
    results = tiny_engine(tmp_path).test(model=tiny_model(), datamodule=datamodule, ckpt_path=ckpt)[0]
    assert 0.0 <= results["image_AUROC"] <= 1.0


def test_model_pinned_to_other_classes_refuses_the_datamodule(tiny_mvtec_root: Path, tmp_path: Path) -> None:
    model = tiny_model(class_names=["bottle", "cable"])
    with pytest.raises(ValueError, match=r"\['carpet', 'grid'\].*does not know"):
        tiny_engine(tmp_path).fit(model=model, datamodule=tiny_datamodule(tiny_mvtec_root))


@pytest.mark.parametrize("export_type", [ExportType.TORCH, ExportType.ONNX, ExportType.OPENVINO])
def test_export(trained, export_type: ExportType, tmp_path: Path) -> None:
    model, _, engine, _ = trained
    path = engine.export(model=model, export_type=export_type, export_root=tmp_path)
    assert path is not None and Path(path).exists()


def test_torch_and_openvino_inferencers_agree_with_the_engine(trained, tmp_path: Path, monkeypatch) -> None:
    """Scores from both inferencers lie in [0, 1] and match Engine.predict within 1e-3 (label-free routing)."""
    model, datamodule, engine, _ = trained
    image_path = next((datamodule.data_root / "carpet" / "test").rglob("*.png"))
    reference = engine.predict(model=model, data_path=image_path)[0].pred_score
    monkeypatch.setenv("TRUST_REMOTE_CODE", "1")
    monkeypatch.chdir(tmp_path)  # OpenVINOInferencer writes an openvino_cache folder into the cwd
    torch_path = engine.export(model=model, export_type=ExportType.TORCH, export_root=tmp_path / "torch")
    openvino_path = engine.export(model=model, export_type=ExportType.OPENVINO, export_root=tmp_path / "ov")
    torch_score = TorchInferencer(path=torch_path, device="cpu").predict(image_path).pred_score
    openvino = OpenVINOInferencer(path=openvino_path, device="CPU", config={"INFERENCE_PRECISION_HINT": "f32"})
    openvino_score = openvino.predict(image_path).pred_score
    for score in (torch_score, openvino_score):
        value = float(torch.as_tensor(score).flatten()[0])
        assert 0.0 <= value <= 1.0
        assert abs(value - float(reference.flatten()[0])) < 1e-3


def test_label_free_routing_refuses_a_model_whose_router_never_saw_data(tiny_mvtec_root: Path, tmp_path: Path) -> None:
    untrained = tiny_model()
    with pytest.raises(RuntimeError, match="router has no statistics"):
        tiny_engine(tmp_path).test(model=untrained, datamodule=tiny_datamodule(tiny_mvtec_root))
