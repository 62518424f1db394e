"""Write an official HVQ-Trans checkpoint (github.com/RuiyingLu/HVQ-Trans) as an anomalib checkpoint.

Usage::

    python -m anomalib_hvq.convert ckpt_best.pth.tar hvq_trans_mvtec.ckpt
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from anomalib_hvq.models.hvq_trans import HVQTrans
from anomalib_hvq.models.hvq_trans.official_checkpoint import OFFICIAL_MVTEC_CLASSES


def lightning_checkpoint(module: nn.Module) -> dict[str, Any]:
    """Return the checkpoint dictionary ``Trainer.save_checkpoint(weights_only=True)`` would write.

    No loop or optimizer state: nothing was trained here, and Lightning then starts its loops afresh.
    """
    import lightning

    checkpoint: dict[str, Any] = {
        "epoch": 0,
        "global_step": 0,
        "pytorch-lightning_version": lightning.__version__,
        "state_dict": module.state_dict(),
        "hyper_parameters": dict(module.hparams),
    }
    if getattr(module, "_hparams_name", None):
        checkpoint["hparams_name"] = module._hparams_name
    module.on_save_checkpoint(checkpoint)
    return checkpoint


def convert_checkpoint(
    source: str | Path,
    target: str | Path,
    class_names: Sequence[str] = OFFICIAL_MVTEC_CLASSES,
    log: Callable[[str], None] = print,
) -> Path:
    """Convert an official checkpoint file into an anomalib checkpoint file; return the target path."""
    module = HVQTrans.from_official_checkpoint(source, class_names)
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.save(lightning_checkpoint(module), target)
    log(
        f"Wrote {target}: {len(class_names)} classes ({', '.join(class_names)}), class_routing='oracle'.\n"
        "The post-processor's normalisation statistics and thresholds are unset (raw scores, no threshold); "
        "run Engine.validate on a validation split to fit them if you need normalised scores or predicted labels."
    )
    return target


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: ``python -m anomalib_hvq.convert official.pth.tar out.ckpt [--class-names ...]``."""
    parser = argparse.ArgumentParser(prog="python -m anomalib_hvq.convert", description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="official checkpoint, e.g. ckpt_best.pth.tar")
    parser.add_argument("target", type=Path, help="anomalib checkpoint to write, e.g. hvq_trans_mvtec.ckpt")
    parser.add_argument(
        "--class-names",
        nargs="+",
        default=list(OFFICIAL_MVTEC_CLASSES),
        help="class names in the checkpoint's class-index order (default: the 15 MVTec AD classes, alphabetical)",
    )
    args = parser.parse_args(argv)
    try:
        convert_checkpoint(args.source, args.target, args.class_names)
    except (ValueError, FileNotFoundError) as error:
        parser.exit(1, f"error: {error}\n")


if __name__ == "__main__":
    main()
