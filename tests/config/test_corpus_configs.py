"""Issue 35: the corpus configs say where their corpus is published and read it from one flag, `--data_dir`.

Nothing here downloads: the corpus files are copies of the tiny test corpus under each config's file names.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from tiny_models import REPO, TINY_CORPUS

from ner_imbalance.config.arguments import parse_arguments
from ner_imbalance.config.run_arguments import DataArguments
from ner_imbalance.training.run import prepare_run

CORPUS_CONFIGS = sorted([*REPO.glob("configs/wnut17_*.yaml"), *REPO.glob("configs/ncbi_disease_*.yaml")])
PUBLISHED_AT = {"wnut17": "github.com/leondz/emerging_entities_17", "ncbi": "MTL-Bioinformatics-2016"}


def published_at(config: Path) -> str:
    return PUBLISHED_AT["wnut17" if config.name.startswith("wnut17") else "ncbi"]


def corpus_folder(folder: Path, config: Path) -> Path:
    """`folder` holding the tiny corpus under the file names `config` reads."""
    settings = yaml.safe_load(config.read_text(encoding="utf-8"))
    folder.mkdir()
    shutil.copy(TINY_CORPUS / "train.conll", folder / settings["train_file"])
    shutil.copy(TINY_CORPUS / "dev.conll", folder / settings["validation_file"])
    return folder


def test_there_are_corpus_configs():
    assert len(CORPUS_CONFIGS) >= 10


@pytest.mark.parametrize("config", CORPUS_CONFIGS, ids=lambda path: path.name)
def test_a_corpus_config_says_where_its_corpus_is_and_reads_it_from_data_dir(config, tmp_path):
    text = config.read_text(encoding="utf-8")
    comments = "".join(line for line in text.splitlines() if line.startswith("#"))
    assert published_at(config) in comments and "--data_dir" in comments
    folder = corpus_folder(tmp_path / "corpus", config)
    flags = ["--config", str(config), "--data_dir", str(folder), "--output_dir", str(tmp_path / "run")]
    arguments = parse_arguments(flags)
    data_args = arguments[1]
    assert Path(data_args.train_file).parent == folder and Path(data_args.validation_file).parent == folder
    prepared = prepare_run(*arguments)
    assert prepared.word_corpus.sources["train"] == data_args.train_file


@pytest.mark.parametrize("config", CORPUS_CONFIGS, ids=lambda path: path.name)
def test_a_missing_corpus_file_names_the_file_where_to_get_it_and_the_flag(config, tmp_path):
    missing = tmp_path / "not_downloaded"
    with pytest.raises(FileNotFoundError) as raised:
        parse_arguments(["--config", str(config), "--data_dir", str(missing)])
    message = str(raised.value)
    assert "\n" not in message and message.startswith("--train_file: file not found: ")
    assert str(missing) in message and published_at(config) in message and "--data_dir FOLDER" in message


def test_a_run_without_its_corpus_is_one_line_exit_2_and_writes_nothing(tmp_path):
    config = REPO / "configs" / "wnut17_focal.yaml"
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "train_ner.py"), "--config", str(config)],
        cwd=tmp_path,  # the config's default --data_dir (../shared/data/wnut17) is not beside this folder
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert "train.conll" in line and "leondz/emerging_entities_17" in line and "--data_dir" in line
    assert list(tmp_path.iterdir()) == []  # no output folder, no outputs/


def test_data_dir_joins_relative_file_names_only():
    data_args = DataArguments(data_dir="corpora/x", train_file="train.conll", test_file="/elsewhere/test.conll")
    resolved = data_args.in_data_dir()
    assert resolved.train_file == str(Path("corpora/x/train.conll"))
    assert resolved.test_file == "/elsewhere/test.conll" and resolved.validation_file is None
    assert DataArguments(train_file="train.conll").in_data_dir().train_file == "train.conll"
