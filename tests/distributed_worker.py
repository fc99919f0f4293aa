"""Worker for test_distributed.py, started by `accelerate launch --multi_gpu --num_processes 2 --cpu`.

Each rank trains the same tiny BERT for two optimizer steps with focal loss and with GHM-C
(momentum 0.75) and saves its final weights, loss state and training loss to OUT/<loss>_rank<r>.pt;
then `ce` with and without `average_tokens_across_devices`, and the plain Trainer without it
(OUT/<run>_rank<r>.pt, see PER_PROCESS_RUNS); then two epochs of repeat-factor sentence sampling,
recording the dataset rows of every optimizer step (OUT/sampled_rank<r>.pt, see
`train_sampled_sentences`). Last, it closes its process group and writes the names of the
threads still running (OUT/threads_rank<r>.json, Linux only).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from tiny_models import make_tiny_bert, make_tiny_tokenizer, random_token_dataset, tiny_training_arguments
from transformers import DataCollatorForTokenClassification, Trainer

from ner_imbalance.data.sampling import SentenceRepeatSampler
from ner_imbalance.losses import build_loss
from ner_imbalance.training.run import close_process_group
from ner_imbalance.training.trainer import ImbalanceTrainer

NUM_LABELS = 5
DISTRIBUTED_LOSSES = {"focal": {"gamma": 2.0}, "ghmc": {"bins": 5, "momentum": 0.75}}


def train_tiny(
    output_dir: Path,
    loss_name: str,
    per_device_batch: int,
    accumulation: int,
    *,
    average_tokens_across_devices: bool = True,
    base_trainer: bool = False,
) -> dict:
    """Two SGD steps over 16 random sentences; the same function serves the single-process reference.

    `base_trainer=True` trains with the plain `transformers.Trainer` and the model's own
    cross-entropy instead (the reference for `ce`).
    """
    tokenizer = make_tiny_tokenizer()
    model = make_tiny_bert(NUM_LABELS, len(tokenizer), seed=0, dropout=0.0)
    args = tiny_training_arguments(
        output_dir,
        per_device_train_batch_size=per_device_batch,
        gradient_accumulation_steps=accumulation,
        max_steps=2,
        average_tokens_across_devices=average_tokens_across_devices,
    )
    common = dict(
        model=model,
        args=args,
        train_dataset=random_token_dataset(16, len(tokenizer), NUM_LABELS, seed=5),
        data_collator=DataCollatorForTokenClassification(tokenizer),
    )
    if base_trainer:
        trainer = Trainer(**common)
    else:
        loss_fn = build_loss(loss_name, num_labels=NUM_LABELS, **DISTRIBUTED_LOSSES.get(loss_name, {}))
        trainer = ImbalanceTrainer(loss_fn=loss_fn, **common)
    result = trainer.train()
    return {
        "weights": {name: tensor.detach().clone() for name, tensor in trainer.model.state_dict().items()},
        "loss_state": {
            name: tensor.clone() for name, tensor in getattr(trainer, "loss_fn", torch.nn.Module()).state_dict().items()
        },
        "training_loss": result.training_loss,
        "world_size": trainer.args.world_size,
    }


# --average_tokens_across_devices false: ImbalanceTrainer with `ce` against the plain Trainer.
PER_PROCESS_RUNS = {
    "ce_per_process": dict(average_tokens_across_devices=False),
    "base_per_process": dict(average_tokens_across_devices=False, base_trainer=True),
    "ce_across_devices": dict(average_tokens_across_devices=True),
}


# Sentence re-sampling: 16 windows of 12 sentences (4 of them with 2 windows) and whole repeat
# factors, so that an epoch holds exactly 24 windows: 6 batches of 2 for each of 2 processes.
SAMPLED_EXAMPLE_INDEX = [0, 0, 1, 2, 3, 3, 4, 5, 6, 7, 8, 9, 9, 10, 11, 11]
SAMPLED_FACTORS = [1.0, 2.0, 1.0, 3.0, 1.0, 2.0, 1.0, 1.0, 1.0, 1.0, 3.0, 1.0]
SAMPLED_BATCH = 2
SAMPLED_EPOCHS = 2


def sampled_dataset(vocab_size: int):
    return random_token_dataset(len(SAMPLED_EXAMPLE_INDEX), vocab_size, NUM_LABELS, seed=9)


def sentence_sampler(window_lengths: list[int], world_size: int) -> SentenceRepeatSampler:
    """The sampler of `train_sampled_sentences`, built as `training.sampler.train_sampler` builds a
    run's: the whole epoch in every process (accelerate shards its batches)."""
    return SentenceRepeatSampler(
        SAMPLED_EXAMPLE_INDEX,
        SAMPLED_FACTORS,
        lengths=window_lengths,
        batch_size=SAMPLED_BATCH * world_size,
        seed=3,
    )


def train_sampled_sentences(output_dir: Path) -> list[list[int]]:
    """Two epochs of repeat-factor sampling; the dataset rows of every optimizer step, in order."""
    tokenizer = make_tiny_tokenizer()
    model = make_tiny_bert(NUM_LABELS, len(tokenizer), seed=0, dropout=0.0)
    dataset = sampled_dataset(len(tokenizer))
    row_of_ids = {tuple(ids): row for row, ids in enumerate(dataset["input_ids"])}
    assert len(row_of_ids) == len(dataset), "rows are told apart by their ids"
    args = tiny_training_arguments(
        output_dir,
        per_device_train_batch_size=SAMPLED_BATCH,
        learning_rate=0.01,
        max_steps=-1,
        num_train_epochs=SAMPLED_EPOCHS,
    )
    rows_per_step: list[list[int]] = []

    def record_rows(module, positional, inputs) -> None:
        lengths = inputs["attention_mask"].sum(dim=1).tolist()
        rows_per_step.append(
            [row_of_ids[tuple(ids[:length])] for ids, length in zip(inputs["input_ids"].tolist(), lengths)]
        )

    model.register_forward_pre_hook(record_rows, with_kwargs=True)
    trainer = ImbalanceTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        data_collator=DataCollatorForTokenClassification(tokenizer),
        loss_fn=build_loss("ce", num_labels=NUM_LABELS),
        train_sampler=sentence_sampler([len(ids) for ids in dataset["input_ids"]], args.world_size),
    )
    trainer.train()
    return rows_per_step


def main(output_dir: Path) -> None:
    runs = {loss_name: dict(loss_name=loss_name) for loss_name in DISTRIBUTED_LOSSES}
    runs.update({run_name: dict(loss_name="ce", **options) for run_name, options in PER_PROCESS_RUNS.items()})
    for run_name, options in runs.items():
        outcome = train_tiny(output_dir / run_name, per_device_batch=4, accumulation=1, **options)
        # The process group exists once the training arguments have set up the devices.
        rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
        torch.save(outcome, output_dir / f"{run_name}_rank{rank}.pt")
    torch.save(train_sampled_sentences(output_dir / "sampled"), output_dir / f"sampled_rank{rank}.pt")
    close_process_group()
    tasks = Path("/proc/self/task")
    if tasks.is_dir():
        thread_names = [(task / "comm").read_text().strip() for task in tasks.iterdir()]
        (output_dir / f"threads_rank{rank}.json").write_text(json.dumps(thread_names))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
