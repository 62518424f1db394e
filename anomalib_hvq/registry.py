# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Make the plugin's models resolvable where anomalib looks models up by name or class path.

``anomalib.models.get_model`` (used by ``anomalib benchmark`` and the tiled ensemble) imports class paths
only from the modules in its ``ALLOWED_MODULES`` whitelist and resolves bare names (``"UniAD"``) as
attributes of ``anomalib.models``. :func:`register_with_anomalib` extends both at run time, without
touching anomalib's files. Name lookups (``get_model("hvq_trans")``) already work once the classes are
imported, since they scan the subclasses of ``AnomalibModule``.

anomalib's own CLI does not import plugins. ``python -m anomalib_hvq.registry <anomalib arguments>``
runs it with the plugin registered, e.g. ``python -m anomalib_hvq.registry benchmark --config bench.yaml``.
"""

from __future__ import annotations

import logging

from anomalib import models as anomalib_models
from anomalib.models.components import AnomalibModule

logger = logging.getLogger(__name__)


def register_with_anomalib(*model_classes: type[AnomalibModule]) -> None:
    """Let ``anomalib.models.get_model`` build ``model_classes`` from their class paths and bare names.

    Every package on the way to each class is whitelisted, so ``anomalib_hvq.HVQTrans``,
    ``anomalib_hvq.models.HVQTrans`` and the defining module's full path all resolve (where the class is
    exported). A bare name that anomalib itself already uses is left to anomalib. Calling it again is
    harmless.

    Args:
        model_classes: ``AnomalibModule`` subclasses to register.

    """
    for model_class in model_classes:
        parts = model_class.__module__.split(".")
        anomalib_models.ALLOWED_MODULES.update(".".join(parts[:end]) for end in range(1, len(parts) + 1))
        existing = getattr(anomalib_models, model_class.__name__, None)
        if existing is None:
            setattr(anomalib_models, model_class.__name__, model_class)
        elif existing is not model_class:
            logger.warning(
                "anomalib already has a model named %s; use the class path %s.%s for the plugin's.",
                model_class.__name__,
                parts[0],
                model_class.__name__,
            )


def main() -> None:
    """Run anomalib's CLI with the plugin's models registered."""
    from anomalib.cli.cli import main as anomalib_main

    from anomalib_hvq.models.hvq_trans import HVQTrans
    from anomalib_hvq.models.uniad import UniAD

    register_with_anomalib(HVQTrans, UniAD)
    anomalib_main()


if __name__ == "__main__":
    main()
