"""The study runner: grid expansion, run ids, records, skip-if-finished, failures, `from_sweep`."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml
from tiny_models import REPO, TINY_CORPUS, make_tiny_bert

from ner_imbalance.study.curves import LearningCurveCallback, first_reaching
from ner_imbalance.study.grid import RunSpec, StudyConfigError, SweepIncompleteError, best_settings, expand_study
from ner_imbalance.study.records import (
    DevOutputs,
    MissingDevOutputsError,
    dev_metrics,
    error_path,
    load_dev_outputs,
    load_records,
    record_path,
    write_record,
)
from ner_imbalance.study.runner import (
    PREDICTIONS_FILE,
    WORD_LOGITS_FILE,
    describe_plan,
    load_study,
    optimizer_steps_for,
    run_grid,
    run_study,
    store_dev_outputs,
)

GRID = {
    "name": "grid",
    "training": {"num_train_epochs": 1},
    "datasets": {
        "alpha": {"train_file": "a/train.conll", "validation_file": "a/dev.conll"},
        "beta": {"train_file": "b/train.conll", "validation_file": "b/dev.conll", "training": {"num_train_epochs": 2}},
    },
    "seeds": [1, 2],
    "entity_keep_ratios": [1.0, 0.3],
    "losses": [
        {"loss": "ce"},
        {"loss": "focal", "gamma": [1, 2]},
        {"loss": "ghmc", "bins": [10, 30], "momentum": [0.0, 0.75]},
    ],
}


def spec(**changes) -> RunSpec:
    settings = dict(
        experiment="main",
        dataset="wnut17",
        data={"train_file": "train.conll", "validation_file": "dev.conll", "max_seq_length": 64},
        training={"num_train_epochs": 2},
        model={},
        entity_keep_ratio=1.0,
        loss="focal",
        hyperparameters={"gamma": 2},
        class_weights="none",
        seed=1,
    )
    return RunSpec(**{**settings, **changes})


def write_yaml(path: Path, content: dict) -> Path:
    path.write_text(yaml.safe_dump(content), encoding="utf-8")
    return path


def test_grid_expands_to_the_product_with_seeds_outermost():
    specs = expand_study(GRID)
    assert len(specs) == 2 * 2 * 2 * (1 + 2 + 4)
    assert [s.seed for s in specs] == [1] * 28 + [2] * 28
    first = specs[:9]
    assert [(s.dataset, s.entity_keep_ratio, s.label) for s in first[:3]] == [
        ("alpha", 1.0, "ce"),
        ("alpha", 1.0, "focal gamma=1"),
        ("alpha", 1.0, "focal gamma=2"),
    ]
    assert (first[7].dataset, first[7].entity_keep_ratio, first[7].label) == ("alpha", 0.3, "ce")
    assert specs[3].hyperparameters == {"bins": 10, "momentum": 0.0}
    assert len({s.run_id for s in specs}) == len(specs)


def test_dataset_budget_overrides_the_shared_one():
    specs = expand_study(GRID)
    assert {s.dataset: s.training["num_train_epochs"] for s in specs} == {"alpha": 1, "beta": 2}


def test_run_id_is_readable_stable_and_independent_of_the_experiment():
    run = spec()
    assert run.run_id.startswith("wnut17__keep1__focal_gamma=2__") and run.run_id.endswith("__seed1")
    assert run.run_id == spec(experiment="sweep").run_id == spec(hyperparameters={"gamma": 2.0}).run_id
    assert run.run_id.startswith(run.setting_id) and spec(seed=2).setting_id == run.setting_id
    assert spec(training={"num_train_epochs": 3}).run_id != run.run_id
    assert spec(data={**run.data, "max_seq_length": 128}).run_id != run.run_id


def test_run_id_does_not_change_between_versions():
    """Pins today's ids: records are found by run id, so a changed id would orphan every finished record."""
    assert spec().run_id == "wnut17__keep1__focal_gamma=2__eeea3291__seed1"
    assert spec(
        loss="ce", hyperparameters={}, class_weights="sqrt_inverse_frequency", entity_keep_ratio=0.3
    ).run_id == ("wnut17__keep0.3__ce_weights=sqrt_inverse_frequency__c3a4cb31__seed1")
    sampled = spec(
        loss="ce", hyperparameters={}, sampling={"sentence_sampling": "repeat_factor", "repeat_threshold": 0.3}
    )
    assert sampled.run_id == "wnut17__keep1__ce_sampling=repeat_factor_t=0.3__271d5fb4__seed1"


def test_sentence_sampling_is_a_setting_of_its_own_beside_the_loss():
    config = {
        **GRID,
        "equal_steps": True,
        "losses": [
            {"loss": "ce"},
            {
                "loss": "focal",
                "gamma": [2],
                "sentence_sampling": ["repeat_factor", "weighted"],
                "repeat_threshold": 0.3,
            },
            {"loss": "ce", "sentence_sampling": "none"},
        ],
    }
    runs = [run for run in expand_study(config) if run.dataset == "alpha" and run.seed == 1]
    plain, repeat, weighted = runs[:3]
    assert (plain.sampling, plain.steps_from_full_set) == ({}, False)
    assert repeat.hyperparameters == {"gamma": 2} and repeat.sampling == {
        "sentence_sampling": "repeat_factor",
        "repeat_threshold": 0.3,
    }
    assert repeat.label == "focal gamma=2 sampling=repeat_factor t=0.3" and weighted.label.endswith("weighted t=0.3")
    assert repeat.steps_from_full_set, "sampling changes an epoch's length: the budget is fixed in steps"
    assert len({run.run_id for run in runs}) == len(runs) == 6, "`sentence_sampling: none` is the plain CE run"
    assert spec(sampling={}).run_id == spec().run_id
    with pytest.raises(StudyConfigError, match="needs `equal_steps: true`"):
        expand_study({**config, "equal_steps": False})
    with pytest.raises(StudyConfigError, match="needs a `sentence_sampling`"):
        expand_study({**GRID, "losses": [{"loss": "ce", "repeat_threshold": 0.3}]})
    sampled_data = {"alpha": {**GRID["datasets"]["alpha"], "sentence_sampling": "weighted"}}
    with pytest.raises(StudyConfigError, match="in a `losses` entry"):
        expand_study({**GRID, "datasets": sampled_data})


def test_config_may_not_set_what_the_study_controls(tmp_path):
    config = {**GRID, "training": {"eval_strategy": "epoch"}}
    with pytest.raises(StudyConfigError, match="eval_strategy"):
        expand_study(config)
    with pytest.raises(StudyConfigError, match="unknown key"):
        load_study(write_yaml(tmp_path / "bad.yaml", {**GRID, "epochs": 2}))


def fake_record(run: RunSpec, f1: float = 0.5) -> dict:
    return {
        "run_id": run.run_id,
        "setting_id": run.setting_id,
        "dataset": run.dataset,
        "loss": run.loss,
        "hyperparameters": run.hyperparameters,
        "class_weights": run.class_weights,
        "seed": run.seed,
        "metrics": {"f1": f1},
    }


def test_skips_finished_runs(tmp_path):
    specs = expand_study(GRID)[:5]
    calls = []

    def execute(run):
        calls.append(run.run_id)
        return fake_record(run)

    first = run_grid(specs, tmp_path, execute)
    second = run_grid(specs, tmp_path, execute)
    assert calls == [s.run_id for s in specs]
    assert first.finished == calls and second.finished == [] and second.skipped == calls
    assert set(load_records(tmp_path)) == set(calls)


def test_a_failing_run_leaves_an_error_file_and_the_study_goes_on(tmp_path):
    specs = expand_study(GRID)[:3]

    def execute(run):
        if run is specs[1]:
            raise RuntimeError("out of memory")
        return fake_record(run)

    summary = run_grid(specs, tmp_path, execute)
    assert summary.failed == [specs[1].run_id]
    assert summary.finished == [specs[0].run_id, specs[2].run_id]
    assert "RuntimeError: out of memory" in error_path(tmp_path, specs[1].run_id).read_text()
    assert not record_path(tmp_path, specs[1].run_id).exists()

    run_grid(specs, tmp_path, fake_record)
    assert not error_path(tmp_path, specs[1].run_id).exists()


def test_fail_fast_reraises_after_saving_the_traceback(tmp_path):
    def execute(run):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        run_grid([spec()], tmp_path, execute, fail_fast=True)
    assert error_path(tmp_path, spec().run_id).is_file()


def test_max_runs_stops_after_that_many_new_records(tmp_path):
    specs = expand_study(GRID)[:4]
    summary = run_grid(specs, tmp_path, fake_record, max_runs=2)
    assert summary.finished == [s.run_id for s in specs[:2]]
    assert summary.not_started == [s.run_id for s in specs[2:]]


def test_records_are_written_atomically(tmp_path):
    path = write_record(tmp_path, fake_record(spec()))
    assert json.loads(path.read_text())["run_id"] == spec().run_id
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_dev_metrics_keeps_hyphenated_types_whole():
    metrics = dev_metrics(
        {
            "eval_f1": 0.5,
            "eval_macro_f1": 0.4,
            "eval_runtime": 3.0,
            "eval_creative-work_f1": 0.1,
            "eval_creative-work_recall": 0.2,
            "eval_creative-work_precision": 0.3,
            "eval_creative-work_support": 140,
            "epoch": 2.0,
        }
    )
    assert metrics == {
        "f1": 0.5,
        "macro_f1": 0.4,
        "per_type": {"creative-work": {"precision": 0.3, "recall": 0.2, "f1": 0.1, "support": 140}},
    }


def sweep_config(tmp_path) -> Path:
    sweep = {
        "name": "sweep",
        "datasets": {"wnut17": {"train_file": "t.conll", "validation_file": "d.conll"}},
        "seeds": [1],
        "losses": [{"loss": "ce"}, {"loss": "focal", "gamma": [1, 2, 3]}],
    }
    return write_yaml(tmp_path / "sweep.yaml", sweep)


def test_from_sweep_takes_the_best_finished_setting(tmp_path):
    sweep_path = sweep_config(tmp_path)
    sweep_specs = load_study(sweep_path, tmp_path)
    main = {**yaml.safe_load(sweep_path.read_text()), "name": "main", "sweep": str(sweep_path)}
    main["losses"] = [{"loss": "ce"}, {"loss": "focal", "from_sweep": "best"}]
    with pytest.raises(SweepIncompleteError, match="3 of 3 sweep runs are not finished"):
        expand_study(main, {})

    records = {run.run_id: fake_record(run, f1) for run, f1 in zip(sweep_specs, [0.5, 0.4, 0.6, 0.55])}
    resolved = expand_study(main, records)
    assert [r.label for r in resolved] == ["ce", "focal gamma=2"]
    assert resolved[1].run_id == sweep_specs[2].run_id, "the main run shares the sweep's record"
    assert best_settings(records.values()) == {"ce": {}, "focal": {"gamma": 2}}


def test_dry_run_lists_each_run_once(tmp_path):
    sweep_path = sweep_config(tmp_path)
    first = load_study(sweep_path, tmp_path)[0]
    write_record(tmp_path, fake_record(first))
    lines = describe_plan([sweep_path, sweep_path], tmp_path)
    assert f"{first.run_id}  done" in lines
    assert lines[-1] == "# total: 4 distinct runs, 1 done, 3 todo"
    assert sum("shared with an earlier config" in line for line in lines) == 4


def test_run_study_drives_run_fn_with_the_study_arguments(tmp_path):
    for name in ("train.conll", "dev.conll"):
        (tmp_path / name).write_text("Paris\tB-location\n", encoding="utf-8")
    config = {
        "name": "end_to_end",
        "training": {"num_train_epochs": 2, "learning_rate": 1.0e-4},
        "datasets": {
            "toy": {
                "train_file": str(tmp_path / "train.conll"),
                "validation_file": str(tmp_path / "dev.conll"),
                "max_seq_length": 32,
                "stride": 8,
            }
        },
        "seeds": [1, 2],
        "losses": [{"loss": "ce"}, {"loss": "focal", "gamma": [2]}],
    }
    specs = expand_study(config)
    seen = []

    def fake_run_experiment(model_args, data_args, loss_args, training_args, callbacks):
        seen.append((loss_args.loss, training_args.seed))
        assert [type(callback).__name__ for callback in callbacks] == ["LearningCurveCallback"]
        assert training_args.eval_strategy == "epoch" and training_args.save_strategy == "no"
        assert not training_args.load_best_model_at_end and not training_args.do_predict
        assert training_args.num_train_epochs == 2 and data_args.max_seq_length == 32
        Path(training_args.output_dir, "model.safetensors").parent.mkdir(parents=True, exist_ok=True)
        Path(training_args.output_dir, "model.safetensors").write_bytes(b"weights")
        # What the pipeline writes for an evaluated validation split: word logits and predictions.
        labels = ["B-location", "I-location", "O"]
        np.savez(
            Path(training_args.output_dir, WORD_LOGITS_FILE),
            logits=np.array([[2.0, 0.0, 1.0]], np.float16),
            sentence_lengths=[1],
            labels=labels,
        )
        Path(training_args.output_dir, PREDICTIONS_FILE).write_text("Paris\tB-location\tB-location\n\n")
        return {
            "train": {"train_runtime": 12.5},
            "eval": {
                "eval_f1": 0.5,
                "eval_precision": 0.6,
                "eval_recall": 0.4,
                "eval_macro_f1": 0.45,
                "eval_runtime": 1.5,
                "eval_location_f1": 0.5,
                "eval_location_precision": 0.6,
                "eval_location_recall": 0.4,
                "eval_location_support": 1,
            },
        }

    def fake_statistics(data_args, seed):
        return {"entity_token_share": 0.05}

    results_dir, scratch = tmp_path / "runs", tmp_path / "checkpoints"
    options = dict(run_fn=fake_run_experiment, statistics_fn=fake_statistics, checkpoint_root=scratch)
    summary = run_study(specs, results_dir, **options)
    assert summary.finished == [s.run_id for s in specs]
    assert seen == [("ce", 1), ("focal", 1), ("ce", 2), ("focal", 2)]
    assert not any(scratch.glob("*/model.safetensors")), "scratch models are deleted"

    record = load_records(results_dir)[specs[1].run_id]
    assert (
        record["experiment"] == "end_to_end" and record["loss"] == "focal" and record["hyperparameters"] == {"gamma": 2}
    )
    assert record["metrics"]["per_type"]["location"]["recall"] == 0.4 and record["metrics"]["f1"] == 0.5
    assert record["training"]["learning_rate"] == 1.0e-4 and record["training"]["max_seq_length"] == 32
    assert record["train_runtime_s"] == 12.5 and record["eval_runtime_s"] == 1.5
    assert record["train_statistics"] == {"entity_token_share": 0.05}
    assert record["learning_curve"] == [] and record["dev_outputs"] == f"{specs[1].run_id}.logits.npz"
    assert load_dev_outputs(results_dir / record["dev_outputs"]).tags(np.array([0])) == [["B-location"]]
    assert record["loss_arguments"]["gamma"] == 2 and record["machine"]["device"] == "cpu"

    assert run_study(specs, results_dir, **options).finished == [] and len(seen) == 4


def test_the_library_never_imports_the_study():
    """The study is an application on top of the library: no module outside `study/` imports it."""
    package = REPO / "ner_imbalance"
    offenders = []
    for path in package.rglob("*.py"):
        if "study" in path.relative_to(package).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            names += [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            offenders += [f"{path.name}: {name}" for name in names if name.startswith("ner_imbalance.study")]
    assert offenders == []


class FakeState:
    def __init__(self, epoch: float, global_step: int) -> None:
        self.epoch, self.global_step = epoch, global_step


def test_learning_curve_counts_training_seconds_without_evaluation():
    readings = iter([0.0, 10.0, 13.0, 20.0, 22.0])
    curve = LearningCurveCallback(clock=lambda: next(readings))
    curve.on_train_begin(None, FakeState(0, 0), None)
    curve.on_epoch_end(None, FakeState(1.0, 5), None)
    curve.on_evaluate(None, FakeState(1.0, 5), None, metrics={"eval_f1": 0.4, "eval_precision": 0.5})
    curve.on_epoch_end(None, FakeState(2.0, 10), None)
    curve.on_evaluate(None, FakeState(2.0, 10), None, metrics={"eval_f1": 0.6, "eval_macro_f1": 0.3})
    curve.on_train_end(None, FakeState(2.0, 10), None)
    assert curve.points == [
        {"epoch": 1.0, "step": 5, "train_seconds": 10.0, "f1": 0.4, "precision": 0.5},
        {"epoch": 2.0, "step": 10, "train_seconds": 17.0, "f1": 0.6, "macro_f1": 0.3},
    ]
    assert curve.optimizer_steps == 10
    assert first_reaching(curve.points, 0.5) == curve.points[1] and first_reaching(curve.points, 0.7) is None


def test_optimizer_steps_are_counted_as_the_trainer_counts_them():
    budget = SimpleNamespace(
        num_train_epochs=3, per_device_train_batch_size=8, gradient_accumulation_steps=2, world_size=1
    )
    assert optimizer_steps_for(33, budget) == 3 * 3  # 5 batches -> 3 updates per epoch
    assert optimizer_steps_for(32, budget) == 3 * 2


def test_dev_outputs_are_kept_beside_the_record_with_gold_and_predicted_ids(tmp_path):
    run_dir, results_dir = tmp_path / "run", tmp_path / "runs"
    run_dir.mkdir()
    labels = ["B-PER", "I-PER", "O"]
    logits = np.arange(15, dtype=np.float32).reshape(5, 3)
    np.savez_compressed(
        run_dir / WORD_LOGITS_FILE, logits=logits.astype(np.float16), sentence_lengths=[3, 2], labels=labels
    )
    (run_dir / PREDICTIONS_FILE).write_text(
        "John\tB-PER\tB-PER\nSmith\tI-PER\tO\nsang\tO\tO\n\nhi\tO\tO\nAnn\tB-PER\tB-PER\n\n", encoding="utf-8"
    )
    name = store_dev_outputs(run_dir, results_dir, "run1")
    outputs = load_dev_outputs(results_dir / name)
    assert name == "run1.logits.npz" and outputs.labels == labels
    assert outputs.logits.dtype == np.float16 and np.array_equal(outputs.logits, logits)
    assert outputs.tags(outputs.gold) == [["B-PER", "I-PER", "O"], ["O", "B-PER"]]
    assert outputs.tags(outputs.predicted) == [["B-PER", "O", "O"], ["O", "B-PER"]]
    with pytest.raises(MissingDevOutputsError, match="wrote no word-level dev logits"):
        store_dev_outputs(tmp_path / "empty", results_dir, "run2")
    with pytest.raises(ValueError, match="disagree"):
        DevOutputs(logits, outputs.gold[:4], outputs.predicted, outputs.sentence_lengths, labels)


def test_a_tiny_study_trains_with_curves_and_equal_steps_at_every_keep_ratio(tmp_path, tiny_tokenizer):
    model_dir = tmp_path / "tiny_bert"
    make_tiny_bert(2, len(tiny_tokenizer)).bert.save_pretrained(model_dir)
    tiny_tokenizer.save_pretrained(model_dir)
    corpus = TINY_CORPUS
    config = {
        "name": "tiny",
        "model": {"model_name_or_path": str(model_dir)},
        "training": {
            "num_train_epochs": 2,
            "per_device_train_batch_size": 8,
            "learning_rate": 1e-3,
            "use_cpu": True,
            "logging_steps": 1,
        },
        "datasets": {
            "tiny": {
                "train_file": str(corpus / "train.conll"),
                "validation_file": str(corpus / "dev.conll"),
                "max_seq_length": 16,
                "stride": 4,
            }
        },
        "seeds": [1],
        "entity_keep_ratios": [1.0, 0.3],
        "equal_steps": True,
        "losses": [{"loss": "ce"}, {"loss": "ce", "sentence_sampling": "repeat_factor", "repeat_threshold": 0.5}],
    }
    specs = expand_study(config)
    results_dir = tmp_path / "runs"
    interrupted = tmp_path / "scratch" / specs[0].run_id
    interrupted.mkdir(parents=True)
    (interrupted / "trainer_state.json").write_text("{}", encoding="utf-8")  # left by a killed attempt
    summary = run_study(specs, results_dir, statistics_fn=None, checkpoint_root=tmp_path / "scratch")
    assert summary.finished == [s.run_id for s in specs]
    full, full_sampled, reduced, reduced_sampled = (load_records(results_dir)[s.run_id] for s in specs)
    assert reduced["training"]["max_steps"] == reduced["optimizer_steps"] == full["optimizer_steps"] > 0
    for sampled in (full_sampled, reduced_sampled):
        assert sampled["sampling"] == {"sentence_sampling": "repeat_factor", "repeat_threshold": 0.5}
        assert sampled["training"]["max_steps"] == sampled["optimizer_steps"] == full["optimizer_steps"]
    assert full["sampling"] == {} and full_sampled["setting_id"] != full["setting_id"]
    shares = full["loss_shares"][0]
    assert shares["step"] > 0 and shares["loss"] > 0 and "loss_share/O" in shares and "p_gold/O" in shares
    assert sum(value for name, value in shares.items() if name.startswith("loss_share/")) == pytest.approx(1.0)
    assert [point["epoch"] for point in full["learning_curve"]] == [1.0, 2.0]
    assert len(reduced["learning_curve"]) > len(full["learning_curve"]), "a smaller set takes more epochs"
    seconds = [point["train_seconds"] for point in full["learning_curve"]]
    assert 0 < seconds[0] < seconds[1] <= full["train_runtime_s"]
    assert set(full["learning_curve"][0]) == {"epoch", "step", "train_seconds", "precision", "recall", "f1", "macro_f1"}
    assert full["learning_curve"][-1]["f1"] == pytest.approx(full["metrics"]["f1"]), "the final model is scored"
    plain = expand_study({**config, "equal_steps": False, "losses": [{"loss": "ce"}]})
    assert plain[0].run_id == specs[0].run_id and plain[1].run_id != specs[2].run_id
