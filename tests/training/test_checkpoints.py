"""Issue 28: checkpoints are complete or absent; resume never picks an incomplete one and says which it skipped."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from tiny_models import one_error_line, random_token_dataset, snapshot, tiny_corpus_flags, tiny_training_arguments
from transformers import DataCollatorForTokenClassification

from ner_imbalance.cli import train
from ner_imbalance.config.arguments import parse_arguments
from ner_imbalance.errors import UsageError
from ner_imbalance.losses import build_loss
from ner_imbalance.training.checkpoints import (
    COMPLETE_MARKER,
    checkpoint_problem,
    last_complete_checkpoint,
    mark_complete,
)
from ner_imbalance.training.output_folder import resolve_checkpoint
from ner_imbalance.training.run import prepare_run
from ner_imbalance.training.trainer import ImbalanceTrainer


def fake_checkpoint(folder: Path, *, complete: bool = True) -> Path:
    """A checkpoint folder with whole weights, optimizer and state files, marked complete or not."""
    folder.mkdir(parents=True)
    save_file({"weight": torch.ones(4, 4)}, str(folder / "model.safetensors"))
    torch.save({"state": {}, "param_groups": []}, folder / "optimizer.pt")
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": int(folder.name.split("-")[1])}))
    if complete:
        mark_complete(folder)
    return folder


def half_written(folder: Path) -> Path:
    """What a kill while saving leaves: weights, an optimizer file cut short, no trainer_state.json, no marker."""
    folder.mkdir(parents=True)
    save_file({"weight": torch.ones(4, 4)}, str(folder / "model.safetensors"))
    torch.save({"state": {"x": torch.ones(100)}}, folder / "optimizer.pt")
    data = (folder / "optimizer.pt").read_bytes()
    (folder / "optimizer.pt").write_bytes(data[: len(data) // 2])
    return folder


def test_a_marked_checkpoint_is_complete_until_a_file_changes_or_goes(tmp_path):
    checkpoint = fake_checkpoint(tmp_path / "checkpoint-5")
    assert checkpoint_problem(checkpoint) is None
    size = (checkpoint / "optimizer.pt").stat().st_size
    (checkpoint / "optimizer.pt").write_bytes(b"cut")
    assert (
        checkpoint_problem(checkpoint) == f"{checkpoint / 'optimizer.pt'} is damaged: 3 bytes, {size} when it was saved"
    )
    (checkpoint / "optimizer.pt").unlink()
    assert checkpoint_problem(checkpoint) == f"{checkpoint / 'optimizer.pt'} is missing"
    (checkpoint / COMPLETE_MARKER).write_text("{")
    assert "is damaged" in checkpoint_problem(checkpoint) and COMPLETE_MARKER in checkpoint_problem(checkpoint)


def test_resume_true_skips_the_half_written_checkpoint_and_says_so(tmp_path, caplog):
    fake_checkpoint(tmp_path / "checkpoint-5")
    half_written(tmp_path / "checkpoint-10")
    with caplog.at_level(logging.INFO, logger="ner_imbalance.training.checkpoints"):
        assert resolve_checkpoint("true", str(tmp_path)) == str(tmp_path / "checkpoint-5")
    messages = [record.getMessage() for record in caplog.records]
    assert messages == [
        f"not resuming from {tmp_path / 'checkpoint-10'}: no {COMPLETE_MARKER}, so its save did not finish",
        f"resuming from {tmp_path / 'checkpoint-5'}",
    ]
    assert last_complete_checkpoint(tmp_path).skipped == {
        str(tmp_path / "checkpoint-10"): f"no {COMPLETE_MARKER}, so its save did not finish"
    }


def test_resume_true_with_only_incomplete_checkpoints_is_one_line_naming_them(tmp_path):
    half_written(tmp_path / "checkpoint-10")
    with pytest.raises(UsageError) as error:
        resolve_checkpoint("last", str(tmp_path))
    message = str(error.value)
    assert "\n" not in message and "no complete checkpoint-* folder" in message
    assert "skipped checkpoint-10: no checkpoint_complete.json" in message


@pytest.mark.parametrize(
    ("damage", "named"),
    [
        ("optimizer.pt", "optimizer.pt is damaged (not a complete torch file)"),
        ("model.safetensors", "model.safetensors is damaged: "),
        ("trainer_state.json", "trainer_state.json is missing"),
    ],
)
def test_an_unmarked_checkpoint_given_explicitly_is_checked_file_by_file(tmp_path, damage, named):
    checkpoint = fake_checkpoint(tmp_path / "checkpoint-7", complete=False)
    assert resolve_checkpoint(str(checkpoint), str(tmp_path)) == str(checkpoint), "whole: resumable as given"
    path = checkpoint / damage
    if damage == "trainer_state.json":
        path.unlink()
    else:
        path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(UsageError, match="cannot resume from it") as error:
        resolve_checkpoint(str(checkpoint), str(tmp_path))
    assert str(checkpoint / named) in str(error.value) or f"{checkpoint}/{named}" in str(error.value)


def test_train_ner_refuses_a_damaged_checkpoint_in_one_line_naming_the_file(tmp_path, tiny_model_dir, capsys):
    run = tmp_path / "run"
    checkpoint = fake_checkpoint(run / "checkpoint-4")
    (checkpoint / "optimizer.pt").write_bytes(b"cut short")
    before = snapshot(run)
    argv = tiny_corpus_flags(tiny_model_dir, run, "--resume_from_checkpoint", str(checkpoint), "--use_cpu", "true")
    assert train.main(argv) == 2
    line = one_error_line(capsys.readouterr().err)
    assert str(checkpoint / "optimizer.pt") in line and "damaged" in line
    assert snapshot(run) == before


def test_prepare_run_resumes_from_the_last_complete_checkpoint(tmp_path, tiny_model_dir):
    fake_checkpoint(tmp_path / "run" / "checkpoint-5")
    half_written(tmp_path / "run" / "checkpoint-10")
    argv = tiny_corpus_flags(tiny_model_dir, tmp_path / "run", "--resume_from_checkpoint", "true", "--use_cpu", "true")
    arguments = parse_arguments(argv)
    prepared = prepare_run(*arguments, resume_from_checkpoint=arguments[3].resume_from_checkpoint)
    assert prepared.resume_from_checkpoint == str(tmp_path / "run" / "checkpoint-5")


def test_every_checkpoint_the_trainer_saves_is_marked_complete(tmp_path, tiny_tokenizer, tiny_bert_factory):
    trainer = ImbalanceTrainer(
        model=tiny_bert_factory(3),
        args=tiny_training_arguments(tmp_path, max_steps=2, save_strategy="steps", save_steps=1),
        loss_fn=build_loss("ce", num_labels=3),
        train_dataset=random_token_dataset(16, len(tiny_tokenizer), 3),
        data_collator=DataCollatorForTokenClassification(tiny_tokenizer),
    )
    trainer.train()
    for step in (1, 2):
        checkpoint = tmp_path / f"checkpoint-{step}"
        assert checkpoint_problem(checkpoint) is None
        listed = json.loads((checkpoint / COMPLETE_MARKER).read_text())["files"]
        assert {"model.safetensors", "optimizer.pt", "trainer_state.json", "loss_state.pt"} <= set(listed)
        assert (checkpoint / "model.safetensors").stat().st_mode & 0o044, "readable by others, as a plain open gives"
