"""Deployment helpers.

Exportable antialiased pre-processing (``resize``), loading checkpoints without the network
(``checkpoint``), inferencers with input checks (``inferencers``), running and comparing exported
models (``runtimes``, ``parity``). Import the
submodules directly: ``runtimes`` needs only numpy and the runtime it runs.
"""
