# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""One console handler per logger in anomalib's CLI, so that each log line prints once.

anomalib 2.7's CLI (``anomalib.loggers.configure_logger``) gives the root logger and Lightning's logger a
plain ``StreamHandler`` *and* a ``RichHandler``, so every line printed twice: ``2026-... - name - INFO - msg``
on stderr and a rich copy on stdout. :func:`one_console_handler` keeps the rich one when stdout is a terminal
and the plain one otherwise (CI, log files: no rich line wrapping there). Installed at import of
``anomalib_hvq``, like :mod:`anomalib_hvq.cli_seed`; it changes the CLI's logging whichever model runs.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable

from rich.logging import RichHandler

CLI_LOGGERS = ("", "lightning.pytorch")


def one_console_handler(logger: logging.Logger, rich: bool) -> None:
    """Drop ``logger``'s rich or plain console handler when it has both (``rich``: keep the rich one)."""
    handlers = logger.handlers
    console = [h for h in handlers if type(h) is logging.StreamHandler]  # not file handlers (subclasses)
    fancy = [h for h in handlers if isinstance(h, RichHandler)]
    if console and fancy:
        for handler in console if rich else fancy:
            logger.removeHandler(handler)


def _dedupe_first(hook: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(hook)
    def before_instantiate_classes(cli) -> None:
        rich = sys.stdout.isatty()
        for name in CLI_LOGGERS:
            one_console_handler(logging.getLogger(name), rich)
        hook(cli)

    before_instantiate_classes.prints_each_line_once = True
    return before_instantiate_classes


def print_each_log_line_once() -> None:
    """Make ``anomalib.cli.AnomalibCLI`` keep one console handler per logger (idempotent)."""
    from anomalib.cli.cli import AnomalibCLI

    if not getattr(AnomalibCLI.before_instantiate_classes, "prints_each_line_once", False):
        AnomalibCLI.before_instantiate_classes = _dedupe_first(AnomalibCLI.before_instantiate_classes)
