"""The study runner: grid expansion, run ids, records, skip-if-finished, failures, `from_sweep`."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
import yaml

from ner_imbalance.study.grid import RunSpec, StudyConfigError, SweepIncompleteError, best_settings, expand_study
from ner_imbalance.study.records import dev_metrics, error_path, load_records, record_path, write_record
from ner_imbalance.study.runner import describe_plan, load_study, run_grid, run_study

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

    def fake_run_experiment(model_args, data_args, loss_args, training_args):
        seen.append((loss_args.loss, training_args.seed))
        assert training_args.eval_strategy == "no" and training_args.save_strategy == "no"
        assert not training_args.load_best_model_at_end and not training_args.do_predict
        assert training_args.num_train_epochs == 2 and data_args.max_seq_length == 32
        Path(training_args.output_dir, "model.safetensors").parent.mkdir(parents=True, exist_ok=True)
        Path(training_args.output_dir, "model.safetensors").write_bytes(b"weights")
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
    assert record["loss_arguments"]["gamma"] == 2 and record["machine"]["device"] == "cpu"

    assert run_study(specs, results_dir, **options).finished == [] and len(seen) == 4


def test_the_library_never_imports_the_study():
    """The study is an application on top of the library: no module outside `study/` imports it."""
    package = Path(__file__).parents[1] / "ner_imbalance"
    offenders = []
    for path in package.rglob("*.py"):
        if "study" in path.relative_to(package).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            names += [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            offenders += [f"{path.name}: {name}" for name in names if name.startswith("ner_imbalance.study")]
    assert offenders == []
