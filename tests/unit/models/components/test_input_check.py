# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""At inference the torch models refuse NaN/inf pixels, 0-255 values and integer tensors, and still export."""

import pytest
import torch
from anomalib.data import ImageBatch
from tiny_hvq import TINY_HVQ
from tiny_uniad import TINY as TINY_UNIAD

from anomalib_hvq import HVQTrans, UniAD
from anomalib_hvq.models.components.input_check import InputError
from anomalib_hvq.models.hvq_trans.torch_model import HVQTransModel
from anomalib_hvq.models.uniad.torch_model import UniADModel


@pytest.fixture(scope="module", params=["hvq", "uniad"])
def model(request: pytest.FixtureRequest) -> torch.nn.Module:
    torch.manual_seed(0)
    if request.param == "hvq":
        return HVQTransModel(**{**TINY_HVQ, "feature_size": (4, 4)}).eval()
    return UniADModel(**TINY_UNIAD).eval()


def _images() -> torch.Tensor:
    """Two normalised images ``(2, 3, 32, 32)``."""
    return torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_pixel_is_refused_naming_the_image(model: torch.nn.Module, value: float) -> None:
    images = _images()
    images[1, 2, 3, 4] = value
    with pytest.raises(InputError, match=r"Image\(s\) \[1\] of the batch hold NaN or infinite values") as error:
        model(images)
    assert error.value.indices == [1]


def test_0_255_values_are_refused(model: torch.nn.Module) -> None:
    images = torch.rand(2, 3, 32, 32) * 255
    with pytest.raises(InputError, match=r"look like 0-255 data.*scaled to \[0, 1\] and normalised"):
        model(images)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int64])
def test_integer_images_are_refused(model: torch.nn.Module, dtype: torch.dtype) -> None:
    with pytest.raises(InputError, match=rf"dtype {dtype}.*images.float\(\) / 255"):
        model((torch.rand(2, 3, 32, 32) * 255).to(dtype))


def test_integer_images_are_refused_in_training_too(model: torch.nn.Module) -> None:
    model.train()
    try:
        with pytest.raises(InputError, match=r"dtype torch.uint8"):
            model(torch.zeros(2, 3, 32, 32, dtype=torch.uint8))
    finally:
        model.eval()


def test_clean_images_score_and_the_model_still_exports_with_the_check(model: torch.nn.Module) -> None:
    assert torch.isfinite(model(_images()).pred_score).all()
    program = torch.export.export(model, (_images(),))
    nan_images = _images()
    nan_images[0, 0, 0, 0] = float("nan")
    # The exported graph has no check (it cannot raise); the inferencers check instead.
    assert program.module()(nan_images).pred_score.shape == (2,)


@pytest.mark.parametrize("module_class", [HVQTrans, UniAD])
def test_lightning_steps_name_the_refused_files(module_class: type) -> None:
    tiny = TINY_HVQ if module_class is HVQTrans else TINY_UNIAD
    module = module_class(**tiny, evaluator=False, visualizer=False, post_processor=False).eval()
    images = _images()
    images[1, 0, 0, 0] = float("nan")
    batch = ImageBatch(image=images, image_path=["good.png", "bad.png"])
    with pytest.raises(InputError, match=r"Image\(s\) \[1\].*Files: \['bad.png'\]"):
        module.validation_step(batch)
    with pytest.raises(InputError, match=r"Files: \['bad.png'\]"):
        module.predict_step(batch, 0)
