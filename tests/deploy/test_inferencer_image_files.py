"""The inferencers read files and PIL images of any bit depth like the datasets, and name a bad file."""

from pathlib import Path

import numpy as np
import pytest
from anomalib.deploy import ExportType
from PIL import Image

from anomalib_hvq.data import CorruptImageError
from anomalib_hvq.deploy.inferencers import OpenVINOInferencer, TorchInferencer

# A grey picture whose 16-bit values are k * 257: the same picture as the 8-bit file of k.
GREY_8 = np.random.default_rng(0).integers(0, 256, (48, 40), dtype=np.uint8)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("files")
    Image.fromarray(GREY_8).save(folder / "grey8.png")
    Image.fromarray(GREY_8.astype(np.uint16) * 257).save(folder / "grey16.png")
    data = (folder / "grey8.png").read_bytes()
    (folder / "truncated.png").write_bytes(data[: len(data) // 2])
    return {path.stem: path for path in folder.iterdir()}


def _score(batch) -> float:
    score = batch.pred_score
    return float(np.ravel(score.detach() if hasattr(score, "detach") else score)[0])


def _check(inferencer, files: dict[str, Path]) -> None:
    reference = _score(inferencer.predict(files["grey8"]))
    assert _score(inferencer.predict(files["grey16"])) == pytest.approx(reference, abs=1e-6)
    with Image.open(files["grey16"]) as image:
        assert _score(inferencer.predict(image)) == pytest.approx(reference, abs=1e-6)
    with pytest.raises(CorruptImageError, match=r"truncated\.png"):
        inferencer.predict(files["truncated"])


def test_torch_inferencer_reads_16_bit_like_8_bit(exported, files, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TRUST_REMOTE_CODE", "1")  # anomalib refuses to unpickle a .pt model without it
    path = exported.engine.export(model=exported.model, export_type=ExportType.TORCH, export_root=tmp_path)
    _check(TorchInferencer(path=path, device="cpu"), files)


def test_openvino_inferencer_reads_16_bit_like_8_bit(exported, files, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # the inferencer writes an openvino_cache folder into the cwd
    config = {"INFERENCE_PRECISION_HINT": "f32"}
    _check(OpenVINOInferencer(path=exported.openvino, device="CPU", config=config), files)
