# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""The datamodules resolve through anomalib's CLI and run through the Engine."""

from pathlib import Path

import pytest
from anomalib.cli import AnomalibCLI
from anomalib.engine import Engine
from anomalib.models import Padim

from anomalib_hvq.data import MultiClassFolder, MultiClassImageBatch, MVTec, Textures

PADIM_ARGS = ["--model", "Padim", "--model.pre_trained", "false", "--model.backbone", "resnet18"]


@pytest.mark.parametrize(
    ("data_args", "expected_type", "expected_names"),
    [
        (["--data", "MultiClassFolder", "--data.categories", "[grid, bottle]"], MultiClassFolder, ["bottle", "grid"]),
        (["--data", "MVTec", "--data.categories", "[zipper, bottle]"], MVTec, ["bottle", "zipper"]),
        (["--data", "Textures"], Textures, ["brick", "fundus", "grass", "gravel"]),
    ],
)
def test_cli_resolves_short_names(
    data_args: list[str],
    expected_type: type,
    expected_names: list[str],
    tiny_mvtec_root: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # the CLI's Engine writes below the working directory
    root = tmp_path / "textures" if expected_type is Textures else tiny_mvtec_root
    args = ["fit", *PADIM_ARGS, *data_args, "--data.root", str(root), "--trainer.accelerator", "cpu"]
    cli = AnomalibCLI(args, run=False)
    assert type(cli.datamodule) is expected_type
    assert cli.datamodule.class_names == expected_names
    assert cli.datamodule.val_split_mode.value == "from_train"


def test_engine_fit_test_predict_keep_class_fields(tiny_mvtec_root: Path, tmp_path: Path) -> None:
    datamodule = MultiClassFolder(tiny_mvtec_root, num_workers=0, train_batch_size=4, eval_batch_size=4, seed=0)
    model = Padim(backbone="resnet18", pre_trained=False, layers=["layer1"], n_features=16)
    engine = Engine(
        max_epochs=1,
        default_root_dir=tmp_path,
        accelerator="cpu",
        devices=1,
        enable_progress_bar=False,
        logger=False,
    )
    engine.fit(model, datamodule=datamodule)
    metrics = engine.test(model, datamodule=datamodule)
    assert "image_AUROC" in metrics[0]
    predictions = engine.predict(model, datamodule=datamodule)
    names = datamodule.class_names
    n_test = 0
    for batch in predictions:
        assert isinstance(batch, MultiClassImageBatch)
        assert batch.pred_score is not None
        assert batch.pred_label is not None
        for path, index, category in zip(batch.image_path, batch.class_index.tolist(), batch.category, strict=True):
            assert Path(path).parts[-4] == category == names[index]
        n_test += len(batch)
    # Visualisations keep <category>/test/<defect>/, so same-named images do not overwrite each other.
    saved = list(tmp_path.rglob("images/*/test/*/*.png"))
    assert {p.parts[-4] for p in saved} == set(names)
    assert len({p.relative_to(p.parents[3]) for p in saved}) == n_test
