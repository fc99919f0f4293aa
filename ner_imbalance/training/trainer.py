"""`ImbalanceTrainer`: `transformers.Trainer` with a per-token loss from `ner_imbalance.losses`.

The Trainer does batching, gradient accumulation, distribution (accelerate), mixed precision,
checkpoints and logging. The loss goes through the Trainer's public `compute_loss_func` hook
(`loss_from_outputs`); what callbacks do (the non-finite-loss guard, preemption, checkpoint
markers, the console lines) is in callbacks. Six methods are still overridden, each because no
hook or callback can do it:

- `log`: the loss shares and the loss's statistics join the training logs. A callback's `on_log`
  runs after `Trainer.log` has copied the dict into `state.log_history`, so keys it added would
  reach the console and TensorBoard but not the log history the study's curves read.
- `_get_train_sampler`, `_get_eval_sampler`: the Trainer has no public sampler hook (sentence
  re-sampling; evaluation in dataset order under length grouping).
- `train`: resolves "the last complete checkpoint", restores the loss state and holds the signal
  handlers around the base loop.
- `save_model`, `save_metrics`: the loss's own state (GHM-C moving averages) is saved with every
  checkpoint, and metrics are written atomically without merging an older run's file.

Normalisation (the part that must be exactly right): the Trainer counts the valid label tokens
of a whole gradient-accumulation window, summed over all processes, and passes that count as
`num_items_in_batch`. The loss divides the sum of its per-token losses by it, so the gradients
of GA = k micro-batches equal those of one k-times-larger batch. DDP then averages gradients over
the P processes, so, as the base Trainer does under `average_tokens_across_devices`, the loss is
multiplied by P. The loss is therefore already scaled for gradient accumulation
(`loss_is_scaled_for_ga = True`) and the Trainer must not divide it again.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn
from torch.utils.data import Sampler
from transformers import Trainer, TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from ner_imbalance.constants import GOLD_PROBABILITY_PREFIX, LOSS_SHARE_PREFIX, OUTSIDE
from ner_imbalance.tags import is_tag, split_tag
from ner_imbalance.training.checkpoints import CompleteCheckpointMarker
from ner_imbalance.training.console import CONSOLE_CALLBACKS
from ner_imbalance.training.output_folder import resolve_checkpoint
from ner_imbalance.training.preemption import PreemptionCallback
from ner_imbalance.utils.atomic import apply_umask_mode, write_json_atomic

LOSS_STATE_NAME = "loss_state.pt"
ALL_RESULTS_NAME = "all_results.json"
LOSS_STATISTICS_PREFIX = "loss_stats/"


class ImbalanceTrainer(Trainer):
    """A `Trainer` whose training and evaluation loss is `loss_fn(logits, labels, num_items_in_batch)`.

    Args:
        loss_fn: a module from `ner_imbalance.losses.build_loss`; it receives the model's logits
            unchanged (fp32, fp16 or bf16) and computes in float32.
        train_sampler: the training sampler to use instead of the Trainer's own (sentence
            re-sampling, `data.sampling.SentenceRepeatSampler`); None for the Trainer's.
        *args, **kwargs: everything `transformers.Trainer` takes (`model`, `args`, datasets,
            `data_collator`, `processing_class`, `compute_metrics`, ...).

    A non-finite training loss stops training with a `FloatingPointError` naming the step, at the
    next logging, evaluation or checkpoint step and before any checkpoint is written, so the
    checkpoints already on disk stay valid. The check reads one device flag at those steps only:
    the training step itself never synchronises with the host.

    Every training log also carries the share of the loss from tokens whose gold tag is `O` and
    from each entity type, and their mean gold probability (`loss_share/<group>`,
    `p_gold/<group>`; see `loss_shares`), for a loss that tracks them (every `TokenLoss`).

    A loss module may offer `statistics() -> dict[str, Tensor | float]` (GHM-C: its bin shares
    and weights); every training log then carries them as `loss_stats/<name>` (`<name>_<i>` for
    the i-th value of a vector), read back from the device once per logging step.
    """

    loss_is_scaled_for_ga = True

    def __init__(
        self,
        *args: Any,
        loss_fn: nn.Module,
        train_sampler: Sampler[int] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, compute_loss_func=self.loss_from_outputs, **kwargs)
        self.train_sampler = train_sampler
        self.loss_fn = loss_fn
        # [step of the first non-finite loss (0: none yet), that loss]; written on the device.
        self._first_nonfinite_loss = torch.zeros(2, device=self.args.device)
        # Checkpoints are marked complete once written; SIGTERM / Ctrl-C save one and stop (issue 28).
        self.add_callback(CompleteCheckpointMarker())
        self._preemption = PreemptionCallback()
        self.add_callback(self._preemption)
        self.add_callback(_NonFiniteLossGuard(self))
        # The console shows a short line per log; the logs keep every key (`console`).
        for printer, console in CONSOLE_CALLBACKS.items():
            if self.pop_callback(printer) is not None:
                self.add_callback(console)
        # The metrics this trainer saved, combined into all_results.json (never an older run's file).
        self._saved_metrics: dict[str, float] = {}

    @property
    def loss_fn(self) -> nn.Module:
        """The loss module (on the training device); setting it restarts its class-share tracking."""
        return self._loss_fn

    @loss_fn.setter
    def loss_fn(self, loss_fn: nn.Module) -> None:
        self._loss_fn = loss_fn.to(self.args.device)
        # Per gold class, the loss and gold probability since the last log, summed on the device;
        # started at the loss's first call, when the number of labels is known.
        self._class_shares = None

    def loss_from_outputs(
        self, outputs: Any, labels: torch.Tensor, num_items_in_batch: torch.Tensor | int | None = None
    ) -> torch.Tensor:
        """The Trainer's public `compute_loss_func`: `loss_fn` on the model's logits.

        The base `Trainer.compute_loss` pops the labels before the forward pass (so the model
        computes no loss of its own), counts `num_items_in_batch` over the whole
        gradient-accumulation window and all processes because this hook is set, passes it here,
        multiplies the result by the number of processes under `average_tokens_across_devices`,
        and treats it as already scaled for gradient accumulation: what the overridden
        `compute_loss` did before, so GA and several processes still equal one big batch
        (tests/training/test_trainer.py, tests/training/test_distributed.py). The loss module follows the model's
        train/eval mode (GHM-C updates its moving averages, and the class shares are summed, in
        training only).
        """
        training = self.model.training
        self.loss_fn.train(training)
        track = getattr(self.loss_fn, "track_class_shares", None)
        if self._class_shares is None and callable(track):
            self._class_shares = track(outputs.logits.shape[-1]).to(self.args.device)
        loss = self.loss_fn(outputs.logits, labels, num_items_in_batch=num_items_in_batch)
        if training:
            self._remember_first_nonfinite(loss.detach())
        return loss

    def _remember_first_nonfinite(self, loss: torch.Tensor) -> None:
        step_and_loss = torch.stack(
            [torch.full_like(loss, self.state.global_step + 1, dtype=torch.float32), loss.float()]
        )
        is_first_bad = ~torch.isfinite(loss) & (self._first_nonfinite_loss[0] == 0)
        self._first_nonfinite_loss = torch.where(is_first_bad, step_and_loss, self._first_nonfinite_loss)

    def raise_if_loss_was_nonfinite(self) -> None:
        """Raise `FloatingPointError` if any training step so far had a NaN or infinite loss."""
        step, loss = self._first_nonfinite_loss.tolist()
        if step:
            raise FloatingPointError(
                f"training loss is {loss} at step {int(step)} ({type(self.loss_fn).__name__}); training stopped. "
                f"Checkpoints already in {self.args.output_dir} were written before that step and stay valid."
            )

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """`Trainer.log`, with the loss module's statistics and the loss shares by gold class added to
        training logs (those with `loss`)."""
        if "loss" in logs:
            logs.update(self.loss_statistics())
            logs.update(self.loss_shares())
        super().log(logs, start_time)

    def loss_shares(self) -> dict[str, float]:
        """Since the last log: the share of the training loss from tokens whose gold tag is `O` and from
        each entity type (`loss_share/<group>`), and the mean gold probability of each (`p_gold/<group>`). A label
        that is not a tag (`tags.is_tag`: a model without NER labels) is a group of its own.

        Read back from the device here, once per logging step (`losses._statistics.ClassLossShares`);
        `{}` for a loss that does not track them.
        """
        if self._class_shares is None:
            return {}
        loss, gold_probability, tokens = self._class_shares.pop().cpu().numpy().astype(float)
        groups: dict[str, list[int]] = {}
        for index, label in sorted(self.model.config.id2label.items()):
            group = (split_tag(label)[1] or OUTSIDE) if is_tag(label) else label
            groups.setdefault(group, []).append(int(index))
        total = loss.sum()
        logs = {}
        for group, labels in groups.items():
            group_tokens = tokens[labels].sum()
            logs[f"{LOSS_SHARE_PREFIX}{group}"] = float(loss[labels].sum() / total) if total > 0 else 0.0
            logs[f"{GOLD_PROBABILITY_PREFIX}{group}"] = (
                float(gold_probability[labels].sum() / group_tokens) if group_tokens else 0.0
            )
        return logs

    def loss_statistics(self) -> dict[str, float]:
        """The loss module's `statistics()` as `loss_stats/<name>` floats; `{}` if it offers none.

        All tensor values are read back to the host together (one synchronisation).
        """
        statistics = getattr(self.loss_fn, "statistics", None)
        if not callable(statistics):
            return {}
        names: list[str] = []
        tensors: list[torch.Tensor] = []
        floats: dict[str, float] = {}
        for name, value in statistics().items():
            if not isinstance(value, torch.Tensor):
                floats[f"{LOSS_STATISTICS_PREFIX}{name}"] = float(value)
                continue
            flat = value.detach().reshape(-1).float()
            names += [name] if flat.numel() == 1 else [f"{name}_{index}" for index in range(flat.numel())]
            tensors.append(flat.to(self.args.device))
        host_values = torch.cat(tensors).tolist() if tensors else []
        return {**floats, **{f"{LOSS_STATISTICS_PREFIX}{name}": value for name, value in zip(names, host_values)}}

    def _get_train_sampler(self, train_dataset: Any = None) -> torch.utils.data.Sampler | None:
        # The Trainer has no public sampler hook, so this private one is overridden. A
        # `train_sampler` (sentence re-sampling, `data.sampling`) draws each epoch: the Trainer
        # computes its schedule once from `len(sampler)`, the same every epoch, and calls
        # `set_epoch` before each, so a resumed run draws what an uninterrupted one drew.
        # Otherwise: the base Trainer drops unused columns (among them the precomputed `length`)
        # before building the sampler, and would then tokenize-count every example again for
        # group_by_length. The rows are the same, so give it the dataset that still has `length`.
        if self.train_sampler is not None:
            return self.train_sampler
        return super()._get_train_sampler(self.train_dataset)

    def _get_eval_sampler(self, eval_dataset: Any) -> torch.utils.data.Sampler | None:
        # Under group_by_length the base Trainer also shuffles evaluation into length groups, so
        # prediction rows no longer follow the dataset's rows and word-level metrics, which map
        # rows back to sentences, would score permuted predictions. Evaluate in dataset order
        # (sort the evaluation set by length beforehand to save padding).
        if self.args.world_size <= 1:
            return torch.utils.data.SequentialSampler(eval_dataset)
        return None

    def train(self, resume_from_checkpoint: str | bool | None = None, **kwargs: Any) -> Any:
        """`Trainer.train`, restoring the loss state (GHM-C moving averages) from the checkpoint too.

        `resume_from_checkpoint=True` is the last complete checkpoint of the output folder. SIGTERM or
        Ctrl-C during training saves a checkpoint and exits (`training.preemption`).
        """
        resume_from_checkpoint = resolve_checkpoint(resume_from_checkpoint, self.args.output_dir)
        if resume_from_checkpoint:
            self.load_loss_state(resume_from_checkpoint)
        with self._preemption.signal_handlers():
            return super().train(resume_from_checkpoint=resume_from_checkpoint, **kwargs)

    def save_metrics(self, split: str, metrics: dict[str, float], combined: bool = True) -> None:
        """`Trainer.save_metrics`, written atomically; `all_results.json` combines only this trainer's metrics.

        The base Trainer writes in place (a crash can leave half a JSON file) and merges into an
        `all_results.json` already on disk, which could mix an earlier run's scores with these.
        """
        if not self.is_world_process_zero():
            return
        write_json_atomic(os.path.join(self.args.output_dir, f"{split}_results.json"), metrics, sort_keys=True)
        if combined:
            self._saved_metrics.update(metrics)
            write_json_atomic(os.path.join(self.args.output_dir, ALL_RESULTS_NAME), self._saved_metrics, sort_keys=True)

    def save_loss_state(self, folder: str) -> None:
        torch.save(self.loss_fn.state_dict(), os.path.join(folder, LOSS_STATE_NAME))

    def load_loss_state(self, folder: str) -> None:
        path = os.path.join(folder, LOSS_STATE_NAME)
        if os.path.isfile(path):
            # Read on the CPU, copied into the loss's own tensors: a CPU process of a multi-process run saved
            # them tagged `cpu:0`, a location torch.load cannot map to.
            self.loss_fn.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        """`Trainer.save_model` plus the loss state; checkpoints are written through here too."""
        super().save_model(output_dir, _internal_call)
        if self.args.should_save:
            self.save_loss_state(output_dir or self.args.output_dir)
            apply_umask_mode(output_dir or self.args.output_dir, "*.safetensors")  # written 0600 by safetensors


class _NonFiniteLossGuard(TrainerCallback):
    """Checks the non-finite-loss flag before every log, evaluation and checkpoint."""

    def __init__(self, trainer: ImbalanceTrainer) -> None:
        self.trainer = trainer

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> TrainerControl:
        if control.should_log or control.should_evaluate or control.should_save or control.should_training_stop:
            self.trainer.raise_if_loss_was_nonfinite()
        return control
