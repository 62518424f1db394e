# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Every command and snippet in README.md's "Quick start", "Use" and "Export" runs, offline, in a scratch folder.

The commands are read from the README text itself, in the README's order, so the README cannot drift. What
the test changes, and only that: placeholders (`<ckpt>` -> the checkpoint the demo command wrote, `<image or
folder>` -> a demo test folder); training gets tiny settings appended (1 epoch, tiny transformer; runs on the
demo data use its `brick` category only; for the MVTec lines also `pre_trained=false`, since EfficientNet-B4's
weights would come from the Hugging Face hub) and runs on tiny data (`./datasets/MVTecAD` is a fake 15-category
tree); `pip install` runs with `--dry-run --no-index` (resolves and builds offline without changing the test's
environment); `tox -e <env>` runs that env's commands from tox.ini with this interpreter (the env's creation, a
multi-GB download, is not repeated), `{posargs}` being the tiny settings for `demo` and one fast test file for
`test` (the suite itself).
"""

from __future__ import annotations

import configparser
import csv
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from tiny_hvq import TINY_ARGS, TINY_HVQ

REPO = Path(__file__).parents[2]
README = (REPO / "README.md").read_text()
TRAIN_OVERRIDES = [*TINY_ARGS, "--trainer.max_epochs=1", "--trainer.check_val_every_n_epoch=1", "--data.num_workers=0"]
# The demo data's runs use one of its four categories: the commands stay as written, the suite stays fast.
# Their run folder is then `textures/brick/` where the README's full runs write `textures/all/`.
TEXTURES_SUBSET = ["--data.categories=[brick]"]
TEXTURES_RUN = "results/HVQTrans/textures/brick/latest"
PYTHON_TINY = ", ".join(f"{key}={value!r}" for key, value in TINY_HVQ.items() if key not in {"backbone", "pre_trained"})
FAST_TEST_FILE = "tests/unit/training/test_lr_schedule.py"


def section(title: str) -> str:
    """The README text from the ``## title`` heading to the next ``## `` heading."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", README, flags=re.DOTALL | re.MULTILINE)
    assert match, f"README has no '## {title}' section"
    return match.group(1)


def blocks(text: str) -> list[tuple[str, str]]:
    """``(language, code)`` of each fenced block in ``text``."""
    return re.findall(r"^```(bash|python)\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE)


def shell_commands(text: str) -> list[list[str]]:
    """Each command of the ``bash`` blocks (lines split at ``&&``, comments dropped) as an argument list."""
    commands = []
    for language, code in blocks(text):
        if language != "bash":
            continue
        for line in code.splitlines():
            words = shlex.split(line.replace("<image or folder>", "<image_or_folder>"), comments=True)
            while words:
                end = words.index("&&") if "&&" in words else len(words)
                commands.append(words[:end])
                words = words[end + 1 :]
    return commands


def _env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "PIP_NO_INDEX": "1", "PYTHONPATH": str(REPO)}


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    done = subprocess.run(command, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"{shlex.join(command)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done


def tox_commands(env: str) -> list[list[str]]:
    """``commands`` of ``[testenv:env]`` in tox.ini (``{posargs}`` left in place)."""
    config = configparser.ConfigParser(interpolation=None)
    config.read(REPO / "tox.ini")
    name = f"testenv:{env}"
    text = config.get(name, "commands", fallback=None) or config.get("testenv", "commands")
    return [shlex.split(line) for line in text.strip().splitlines()]


class Scratch:
    """A fresh folder with the repo's configs, where the README's commands run in order."""

    def __init__(self, root: Path, mvtec: Path) -> None:
        self.root = root
        (root / "configs").symlink_to(REPO / "configs")
        (root / "datasets").mkdir()
        (root / "datasets" / "MVTecAD").symlink_to(mvtec)
        self.ran: list[str] = []

    @property
    def checkpoint(self) -> Path:
        return self.root / TEXTURES_RUN / "weights/lightning/model.ckpt"

    def substitute(self, word: str) -> str:
        images = self.root / "datasets/textures/brick/test/crack"
        return word.replace("<ckpt>", str(self.checkpoint)).replace("<image_or_folder>", str(images))

    def run(self, words: list[str]) -> subprocess.CompletedProcess:
        self.ran.append(shlex.join(words))
        words = [self.substitute(word) for word in words]
        program, *args = words
        if program in {"python3", "python"} and args[:2] == ["-m", "tox"]:
            return self.run_tox(args[2:])
        if program in {"python3", "python"} and args[:2] == ["-m", "pip"]:
            program, args = "pip", args[2:]
        if program == "pip":
            assert args[0] == "install", words
            offline = ["--dry-run", "--no-index", "--no-deps", "--no-build-isolation"]
            return _run([sys.executable, "-m", "pip", "install", *offline, *args[1:]], cwd=REPO)
        if program == "anomalib":
            extra = TRAIN_OVERRIDES if args[0] == "train" else []
            if args[0] in {"test", "export"} and "--data" in args:
                extra = ["--data.num_workers=0"]
            if "configs/hvq_trans_demo.yaml" in args or "anomalib_hvq.data.Textures" in args:
                extra = [*extra, *TEXTURES_SUBSET]
            return _run([str(Path(sys.executable).with_name("anomalib")), *args, *extra], self.root)
        raise AssertionError(f"the README shows a command this test does not know how to run: {shlex.join(words)}")

    def run_tox(self, args: list[str]) -> subprocess.CompletedProcess:
        assert args[0] == "-e" and len(args) == 2, args
        posargs = {"demo": TRAIN_OVERRIDES + TEXTURES_SUBSET, "test": [str(REPO / FAST_TEST_FILE)]}[args[1]]
        done = None
        for command in tox_commands(args[1]):
            words = [word for word in command if word != "{posargs}"] + (posargs if "{posargs}" in command else [])
            if words[:3] == ["python", "-m", "tox"]:
                assert "--notest" in words, words  # builds the shared env: that is this environment here
                continue
            program = words[0].replace("{/}", "/").rsplit("/", 1)[-1]  # e.g. {work_dir}{/}test{/}bin{/}anomalib
            if program == "pytest":
                words = [sys.executable, "-m", *words]
            elif program == "anomalib":
                words = [str(Path(sys.executable).with_name("anomalib")), *words[1:]]
            done = _run(words, self.root)
        assert done is not None, f"tox env {args[1]} runs nothing"
        return done

    def run_python(self, code: str) -> subprocess.CompletedProcess:
        self.ran.append(code.splitlines()[0] + " ...")
        assert "max_epochs=30" in code and 'HVQTrans(backbone="tf_efficientnet_lite0")' in code
        assert 'Textures(root="./datasets/textures")' in code
        code = code.replace("max_epochs=30", "max_epochs=1")
        code = code.replace(
            'Textures(root="./datasets/textures")', 'Textures(root="./datasets/textures", categories=["brick"])'
        )
        code = code.replace(
            'HVQTrans(backbone="tf_efficientnet_lite0")', f'HVQTrans(backbone="tf_efficientnet_lite0", {PYTHON_TINY})'
        )
        script = self.root / "snippet.py"
        script.write_text(code)
        return _run([sys.executable, str(script)], self.root)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory, fake_mvtec15_root: Path) -> Scratch:
    return Scratch(tmp_path_factory.mktemp("readme"), fake_mvtec15_root)


def test_quick_start_has_two_commands_that_run(scratch: Scratch) -> None:
    commands = shell_commands(section("Quick start"))
    assert [command[-2:] for command in commands if "tox" in command] == [["-e", "demo"], ["-e", "test"]]
    outputs = [scratch.run(command) for command in commands]
    # What the Quick start says the demo writes.
    assert "results/HVQTrans/textures/all/latest/per_category_metrics" in README
    table = scratch.root / TEXTURES_RUN / "per_category_metrics.md"
    assert table.is_file() and "| brick" in table.read_text()
    assert scratch.checkpoint.is_file()
    assert "passed" in outputs[-1].stdout
    # Output captured (not a terminal): one plain progress line per epoch, each log line once.
    demo = outputs[1]
    assert len(re.findall(r"^epoch 1/1  loss \d+\.\d{4}  [\d.]+ images/s  ETA 0s$", demo.stdout, re.MULTILINE)) == 1
    assert (demo.stdout + demo.stderr).count("Initializing HVQTrans model.") == 1
    assert "in eval mode at the start of training" not in demo.stderr
    assert "frozen backbone stay in eval mode while training, by design" in demo.stdout + demo.stderr


def test_use_commands_and_python_snippet_run(scratch: Scratch) -> None:
    text = section("Use")
    assert [language for language, _ in blocks(text)] == ["bash", "bash", "python"]
    outputs = {shlex.join(command): scratch.run(command) for command in shell_commands(text)}
    predict = next(done for command, done in outputs.items() if command.startswith("anomalib predict"))
    with (scratch.root / "results/HVQTrans/predict/latest/predictions.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == len(list((scratch.root / "datasets/textures/brick/test/crack").glob("*.png")))
    assert rows[0]["image_path"] in predict.stdout
    assert (scratch.root / "results/HVQTrans/export/latest/weights/openvino/model.xml").is_file()
    mvtec_runs = [run for run in (scratch.root / "results/HVQTrans").glob("*/all/v*") if "textures" not in str(run)]
    assert len(mvtec_runs) == 3, mvtec_runs
    (code,) = [code for language, code in blocks(text) if language == "python"]
    done = scratch.run_python(code)
    assert "image_AUROC/mean" in done.stdout + done.stderr


def test_export_commands_run(scratch: Scratch) -> None:
    commands = shell_commands(section("Export"))
    assert ["--compression_type", "FP16"] in [command[-2:] for command in commands]
    before = set((scratch.root / "results/HVQTrans/export").glob("v*"))
    for command in commands:
        done = scratch.run(command)
        assert "Replaced initializer" not in done.stdout + done.stderr  # the ONNX optimiser's INFO flood
    runs = sorted(set((scratch.root / "results/HVQTrans/export").glob("v*")) - before)
    assert len(runs) == len([command for command in commands if command[:2] == ["anomalib", "export"]])
    sizes = [(run / "weights/openvino/model.bin").stat().st_size for run in runs]
    # FP32, FP16 weights (about half), INT8 (smaller still).
    assert sizes[1] < 0.6 * sizes[0] and sizes[2] < sizes[0]
