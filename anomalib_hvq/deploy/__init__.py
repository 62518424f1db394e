# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Deployment helpers.

Inferencers with input checks (``inferencers``), running and comparing exported models (``runtimes``,
``parity``). Import the submodules directly: ``runtimes`` needs only numpy and the runtime it runs.
"""
