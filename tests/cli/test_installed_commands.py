"""The commands as a user gets them: the wheel built from this repository, installed into a fresh virtual
environment, run from a folder outside the repository.

The environment sees the test environment's packages (`--system-site-packages`: torch and transformers are
not installed twice) but its own copy of `ner_imbalance`, which the test checks before it runs anything.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from tiny_models import REPO, TINY_CORPUS, make_tiny_tokenizer, save_tiny_encoder

COMMANDS = ("ner-train", "ner-predict", "ner-evaluate", "ner-export-onnx", "ner-tune", "ner-data-stats")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The `bin` folder of a fresh virtual environment with the wheel of this repository installed."""
    root = tmp_path_factory.mktemp("installed")
    wheels = root / "wheels"
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels)]
    subprocess.run([*build, str(REPO)], check=True, capture_output=True, timeout=600)
    (wheel,) = wheels.glob("ner_imbalance-*.whl")
    environment = root / "venv"
    venv.EnvBuilder(system_site_packages=True, with_pip=True).create(environment)
    python = environment / "bin" / "python"
    install = [str(python), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)]
    subprocess.run(install, check=True, capture_output=True, timeout=600)
    return environment / "bin"


def run_outside(command: list[str], folder: Path) -> subprocess.CompletedProcess:
    """`command` run from `folder`, without this repository on `PYTHONPATH`."""
    environment = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
    environment["OMP_NUM_THREADS"] = "1"
    return subprocess.run(command, cwd=folder, env=environment, capture_output=True, text=True, timeout=600)


def test_the_wheel_installs_the_package_and_its_commands(installed, tmp_path):
    result = run_outside(
        [str(installed / "python"), "-c", "import ner_imbalance; print(ner_imbalance.__file__)"], tmp_path
    )
    assert result.returncode == 0, result.stderr
    location = Path(result.stdout.strip()).resolve()
    assert location.is_relative_to(installed.parent.resolve()), f"imported from {location}, not the new environment"
    assert not location.is_relative_to(REPO)
    for command in COMMANDS:
        assert (installed / command).is_file(), f"{command} is not installed"
    version = run_outside([str(installed / "ner-predict"), "--version"], tmp_path)
    assert version.returncode == 0 and version.stdout.strip() == "ner-predict 0.1.0", version.stderr


def test_ner_train_trains_three_steps_from_outside_the_repository(installed, tmp_path):
    help_text = run_outside([str(installed / "ner-train"), "--help"], tmp_path)
    assert help_text.returncode == 0 and "--loss" in help_text.stdout, help_text.stderr
    data = tmp_path / "data"
    shutil.copytree(TINY_CORPUS, data)
    model = save_tiny_encoder(tmp_path / "tiny_bert", make_tiny_tokenizer())
    output = tmp_path / "run"
    flags = ["--model_name_or_path", str(model), "--train_file", str(data / "train.conll")]
    flags += ["--validation_file", str(data / "dev.conll"), "--output_dir", str(output), "--loss", "focal"]
    flags += ["--max_steps", "3", "--per_device_train_batch_size", "8", "--use_cpu", "true", "--report_to", "none"]
    result = run_outside([str(installed / "ner-train"), *flags, "--disable_tqdm", "true"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"ner-train: output folder {output}" in result.stdout
    assert '"global_step": 3' in (output / "trainer_state.json").read_text(encoding="utf-8")
    assert (output / "model.safetensors").is_file() and (output / "eval_results.json").is_file()
