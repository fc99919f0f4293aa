"""The study report: mean ± std over seeds (worked out by hand), tables, JSON and plots."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from study_records import entity_scores, study_record
from tiny_models import FIXTURES

from ner_imbalance.evaluation import evaluate_tags
from ner_imbalance.evaluation.bootstrap import (
    macro_f1,
    micro_f1,
    paired_bootstrap,
    sentence_counts,
    sentence_type_counts,
)
from ner_imbalance.study.crossfit import RunCalibration
from ner_imbalance.study.grid import RunSpec, expand_study
from ner_imbalance.study.plots import calibrated_means, plot_imbalance, plot_per_type_f1
from ner_imbalance.study.records import DevOutputs, dev_outputs_path, write_dev_outputs, write_record
from ner_imbalance.study.report import comparison_table, format_delta, format_stat, write_report
from ner_imbalance.study.summary import Stat, aggregate, mean_std

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CONFIG = {
    "name": "main",
    "title": "Main comparison",
    "training": {"num_train_epochs": 2},
    "datasets": {"wnut17": {"train_file": "t.conll", "validation_file": "d.conll", "max_seq_length": 64}},
    "seeds": [1, 2, 3],
    "losses": [{"loss": "focal", "gamma": [2]}, {"loss": "ce"}, {"loss": "ghmc", "bins": [10], "momentum": [0.75]}],
}
# Per setting, per seed: micro F1, micro recall, macro F1, recall of person, recall of creative-work.
SCORES = {
    "ce": [(0.50, 0.40, 0.30, 0.20, 0.00), (0.60, 0.50, 0.40, 0.40, 0.10), (0.70, 0.60, 0.50, 0.60, 0.20)],
    "focal gamma=2": [(0.80, 0.70, 0.60, 0.50, 0.30), (0.81, 0.72, 0.62, 0.50, 0.30), (0.82, 0.74, 0.64, 0.50, 0.30)],
    "ghmc bins=10 momentum=0.75": [
        (0.62, 0.50, 0.40, 0.40, 0.10),
        (0.64, 0.50, 0.40, 0.40, 0.10),
        (0.66, 0.50, 0.40, 0.40, 0.10),
    ],
}


def hand_made_record(run: RunSpec, scores: tuple[float, ...], entity_share: float = 0.05) -> dict:
    f1, recall, macro_f1, person_recall, creative_recall = scores
    metrics = {
        "precision": f1,
        "recall": recall,
        "f1": f1,
        "macro_f1": macro_f1,
        "per_type": {
            "person": entity_scores(0.5, person_recall, person_recall, 470),
            "creative-work": entity_scores(0.5, creative_recall, creative_recall, 142),
        },
    }
    return study_record(
        run,
        metrics,
        train_runtime_s=120.0,
        train_statistics={"entity_token_share": entity_share},
        machine={"device": "cpu"},
    )


def hand_made_records(config: dict = CONFIG) -> list[dict]:
    return [hand_made_record(run, SCORES[run.label][run.seed - 1]) for run in expand_study(config)]


def assert_stat(stat: Stat, mean: float, std: float | None, n: int) -> None:
    assert (stat.mean, stat.std, stat.n) == (pytest.approx(mean), pytest.approx(std), n)


def test_mean_and_sample_std():
    assert_stat(mean_std([0.5, 0.6, 0.7]), 0.6, 0.1, 3)
    assert mean_std([0.8]) == Stat(mean=0.8, std=None, n=1)


def test_aggregation_of_three_seeds_worked_out_by_hand():
    summaries = {summary.label: summary for summary in aggregate(hand_made_records())}
    ce = summaries["ce"]
    assert ce.seeds == [1, 2, 3] and ce.is_reference
    assert_stat(ce.metrics["f1"], 0.60, 0.10, 3)
    assert_stat(ce.metrics["macro_f1"], 0.40, 0.10, 3)
    assert_stat(ce.per_type["person"]["recall"], 0.40, 0.20, 3)
    assert_stat(summaries["focal gamma=2"].metrics["f1"], 0.81, 0.01, 3)
    assert_stat(summaries["focal gamma=2"].metrics["recall"], 0.72, 0.02, 3)
    assert_stat(summaries["ghmc bins=10 momentum=0.75"].metrics["recall"], 0.50, 0.0, 3)


def test_cells_and_the_within_noise_mark():
    assert format_stat(Stat(0.6, 0.1, 3)) == "60.0 ± 10.0"
    assert format_stat(Stat(0.6, None, 1)) == "60.0 ± —"
    ce = Stat(0.60, 0.10, 3)
    assert format_delta(Stat(0.64, 0.02, 3), ce) == "+4.0 ~"
    assert format_delta(Stat(0.81, 0.01, 3), ce) == "+21.0"
    assert format_delta(Stat(0.55, None, 1), Stat(0.60, None, 1)) == "-5.0"


def test_table_has_ce_first_and_bolds_the_best_f1():
    header, separator, *rows = comparison_table(aggregate(hand_made_records()))
    assert header == (
        "| loss setting | n | micro F1 | Δ F1 | micro R | Δ R | macro F1 | Δ macro F1 "
        "| R person (470) | R creative-work (142) |"
    )
    assert (
        rows[0]
        == "| ce (reference) | 3 | 60.0 ± 10.0 | — | 50.0 ± 10.0 | — | 40.0 ± 10.0 | — | 40.0 ± 20.0 | 10.0 ± 10.0 |"
    )
    assert (
        rows[1] == "| focal gamma=2 | 3 | **81.0 ± 1.0** | +21.0 | 72.0 ± 2.0 | +22.0 | 62.0 ± 2.0 | +22.0 "
        "| 50.0 ± 0.0 | 30.0 ± 0.0 |"
    )
    assert (
        rows[2] == "| ghmc bins=10 momentum=0.75 | 3 | 64.0 ± 2.0 | +4.0 ~ | 50.0 ± 0.0 | +0.0 ~ | 40.0 ± 0.0 | +0.0 ~ "
        "| 40.0 ± 0.0 | 10.0 ± 0.0 |"
    )


def write_study(tmp_path: Path) -> tuple[list[Path], Path]:
    results_dir = tmp_path / "runs"
    imbalance = {**CONFIG, "name": "imbalance", "title": "Imbalance", "entity_keep_ratios": [1.0, 0.1], "seeds": [1, 2]}
    paths = []
    for config in (CONFIG, imbalance):
        path = tmp_path / f"{config['name']}.yaml"
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        paths.append(path)
        for run in expand_study(config):
            share = 0.05 if run.entity_keep_ratio == 1.0 else 0.008
            write_record(results_dir, hand_made_record(run, SCORES[run.label][run.seed - 1], share))
    return paths, results_dir


def test_report_writes_markdown_json_and_plots(tmp_path):
    configs, results_dir = write_study(tmp_path)
    output, img_dir = tmp_path / "docs" / "results.md", tmp_path / "docs" / "img"
    written = write_report(configs, results_dir, output, img_dir)

    markdown = output.read_text(encoding="utf-8")
    assert "## Main comparison" in markdown and "## Imbalance" in markdown
    assert "| wnut17 | 2 | 64 | 16 | 5e-05 | 1, 2, 3 | 15 | 2.0 min | cpu |" in markdown
    main_table = markdown.split("## Main comparison")[1]
    assert main_table.index("| ce (reference) |") < main_table.index("| focal gamma=2 |")
    assert "O:entity ≈ 124:1" in markdown
    assert "![comparison plot, wnut17](img/per_type_f1_wnut17.png)" in markdown

    aggregates = json.loads(output.with_suffix(".json").read_text())
    main_settings = aggregates["sections"][0]["settings"]
    assert [setting["label"] for setting in main_settings] == ["focal gamma=2", "ce", "ghmc bins=10 momentum=0.75"]
    assert main_settings[1]["metrics"]["f1"]["mean"] == pytest.approx(0.6)
    assert aggregates["sections"][1]["runs_finished"] == 12

    plots = [path for path in written if path.suffix == ".png"]
    assert sorted(path.name for path in plots) == ["f1_vs_imbalance_wnut17.png", "per_type_f1_wnut17.png"]
    assert all(path.read_bytes().startswith(PNG_SIGNATURE) for path in plots)


def test_report_of_a_config_waiting_for_its_sweep(tmp_path):
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(yaml.safe_dump({**CONFIG, "name": "sweep", "seeds": [1]}), encoding="utf-8")
    main = tmp_path / "main.yaml"
    main.write_text(
        yaml.safe_dump({**CONFIG, "sweep": str(sweep), "losses": [{"loss": "focal", "from_sweep": "best"}]}),
        encoding="utf-8",
    )
    output = tmp_path / "results.md"
    write_report([sweep, main], tmp_path / "runs", output, tmp_path / "img")
    assert (
        "No results yet: main: `focal` from the sweep sweep: 1 of 1 sweep runs are not finished" in output.read_text()
    )


def test_plots_are_png_files(tmp_path):
    summaries = aggregate(hand_made_records())
    assert plot_per_type_f1(summaries, tmp_path / "bars.png", "F1").read_bytes().startswith(PNG_SIGNATURE)
    by_ratio = {1.0: summaries}
    assert plot_imbalance(by_ratio, tmp_path / "lines.png", "imbalance").read_bytes().startswith(PNG_SIGNATURE)


def test_imbalance_plot_takes_the_calibrated_means_over_seeds(tmp_path):
    records = {record["run_id"]: record for record in hand_made_records()}
    summaries = aggregate(records.values())
    calibrated = {
        run_id: RunCalibration({"outside": {"f1": record["seed"] / 10, "recall": 0.5}}, {}, {})
        for run_id, record in records.items()
    }
    means = calibrated_means(summaries, records, calibrated, ["outside"])
    assert means[summaries[0].setting_id] == {"outside": {"f1": pytest.approx(0.2), "recall": 0.5}}, "seeds 1-3"
    assert calibrated_means(summaries, records, calibrated, []) == {}
    path = plot_imbalance({1.0: summaries}, tmp_path / "lines.png", "imbalance", means)
    assert path.read_bytes().startswith(PNG_SIGNATURE)


STUDY_FIXTURES = FIXTURES / "study"


def test_report_of_committed_records_is_byte_for_byte_unchanged(tmp_path, monkeypatch):
    """Three records copied from results/runs render exactly as the committed report did."""
    shutil.copytree(STUDY_FIXTURES, tmp_path, dirs_exist_ok=True)
    monkeypatch.chdir(tmp_path)
    write_report(["configs/short_budget.yaml"], "runs", "out/results.md", "out/img")
    for name in ("results.md", "results.json"):
        assert (tmp_path / "out" / name).read_bytes() == (STUDY_FIXTURES / f"expected_{name}").read_bytes(), name


def test_sentence_counts_and_paired_bootstrap():
    gold = [["B-PER", "O"], ["B-LOC", "I-LOC"], ["O", "O"]]
    counts = sentence_counts(gold, [["B-PER", "O"], ["B-LOC", "O"], ["B-PER", "O"]])
    assert counts.tolist() == [[1, 1, 1], [0, 1, 1], [0, 1, 0]]
    assert micro_f1(counts.sum(axis=0)) == pytest.approx(2 * 1 / (3 + 2))
    perfect, counts = np.tile(sentence_counts(gold, gold), (10, 1)), np.tile(counts, (10, 1))
    low, high = paired_bootstrap([perfect, perfect], [counts, counts], resamples=200)
    assert 0 < low <= high <= 1, "always better on every resample"
    assert paired_bootstrap([counts], [counts], resamples=50) == (0.0, 0.0)


def test_sentence_type_counts_sum_to_the_overall_counts_and_give_evaluate_tags_macro_f1():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "B-ORG"], ["B-LOC"]]
    pred = [["B-PER", "O", "O", "B-LOC"], ["B-MISC", "B-ORG"], ["O"]]
    scores = evaluate_tags(gold, pred)
    types = list(scores["per_type"])
    assert types == ["LOC", "MISC", "ORG", "PER"], "MISC is only predicted, and counts in the macro average"
    counts = sentence_type_counts(gold, pred, types)
    assert counts[0].tolist() == [[1, 1, 1], [0, 0, 0], [0, 0, 0], [0, 1, 1]], "PER is cut short: not correct"
    np.testing.assert_array_equal(counts.sum(axis=1), sentence_counts(gold, pred))
    assert macro_f1(counts.sum(axis=0)) == pytest.approx(scores["macro_f1"])
    with pytest.raises(ValueError, match="'MISC' is not among"):
        sentence_type_counts(gold, pred, ["LOC", "ORG", "PER"])


@pytest.mark.parametrize("metric", ["f1", "macro_f1"])
def test_paired_bootstrap_equals_rescoring_each_resample_with_evaluate_tags(metric):
    """The interval from summed counts equals one computed the slow way: draw the same sentences,
    score both taggings of the resampled corpus with `evaluate_tags`, take the percentiles."""
    labels = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG"]
    generator = np.random.default_rng(7)

    def tagging(num_sentences: int) -> list[list[str]]:
        return [[labels[i] for i in generator.integers(0, len(labels), size=4)] for _ in range(num_sentences)]

    gold, setting, reference = tagging(12), tagging(12), tagging(12)
    resamples, seed = 40, 3
    counts_of = {
        "f1": lambda pred: sentence_counts(gold, pred),
        "macro_f1": lambda pred: sentence_type_counts(gold, pred, list(evaluate_tags(gold, pred)["per_type"])),
    }[metric]
    interval = paired_bootstrap(
        [counts_of(setting)],
        [counts_of(reference)],
        score=macro_f1 if metric == "macro_f1" else micro_f1,
        resamples=resamples,
        seed=seed,
    )
    samples = np.random.default_rng(seed).integers(0, len(gold), size=(resamples, len(gold)))

    def resampled_score(pred: list[list[str]], drawn: np.ndarray) -> float:
        scores = evaluate_tags([gold[i] for i in drawn], [pred[i] for i in drawn])
        if metric == "f1":
            return scores["f1"]
        types = evaluate_tags(gold, pred)["per_type"]  # the whole corpus's types, absent ones scoring 0
        return sum(scores["per_type"].get(name, {"f1": 0.0})["f1"] for name in types) / len(types)

    differences = [resampled_score(setting, drawn) - resampled_score(reference, drawn) for drawn in samples]
    assert interval == pytest.approx(tuple(np.percentile(differences, [2.5, 97.5])))
    assert interval[0] < interval[1], "random taggings: the interval is not degenerate"


def test_convergence_section_has_paired_intervals_and_time_to_reach_ce(tmp_path):
    config = {**CONFIG, "name": "conv", "title": "Convergence", "section": "convergence", "seeds": [1, 2]}
    config["losses"] = [{"loss": "ce"}, {"loss": "focal", "gamma": [2]}]
    labels = ["B-person", "I-person", "O"]
    gold = np.tile([0, 1, 2, 0, 2], 10)
    results_dir = tmp_path / "runs"
    for run in expand_study(config):
        focal = run.loss == "focal"
        record = hand_made_record(run, SCORES[run.label][run.seed - 1])
        record["learning_curve"] = [
            {"epoch": 1.0, "train_seconds": 10.0, "f1": 0.9 if focal else 0.3},
            {"epoch": 2.0, "train_seconds": 20.0, "f1": record["metrics"]["f1"]},
        ]
        predicted = gold if focal else np.tile([0, 2, 2, 2, 2], 10)
        outputs = DevOutputs(np.zeros((50, 3), np.float16), gold, predicted, np.tile([2, 1, 2], 10), labels)
        write_dev_outputs(dev_outputs_path(results_dir, run.run_id), outputs)
        write_record(results_dir, record)
    path = tmp_path / "conv.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    written = write_report([path], results_dir, tmp_path / "results.md", tmp_path / "img")
    markdown = (tmp_path / "results.md").read_text(encoding="utf-8")
    assert "| loss setting | n | micro P | Δ P | micro R | Δ R | micro F1 | Δ F1 | macro F1 |" in markdown
    assert "| focal gamma=2 | 1, 2 | +25.5 ± 6.4 | [+100.0, +100.0] |" in markdown
    assert "| focal gamma=2 | 2 of 2 | 1.0 ± 0.0 | 10 ± 0 |" in markdown
    assert "| ce | 2 of 2 | 2.0 ± 0.0 | 20 ± 0 |" in markdown
    assert "- wnut17: `focal gamma=2` above CE by +25.5 ± 6.4 points" in markdown
    assert [p.name for p in written if p.suffix == ".png"] == ["learning_curves_wnut17.png"]
    assert "## Which remedy when (convergence)" in markdown, "scored from the stored dev outputs (no calibration)"
    remedies = json.loads((tmp_path / "results.json").read_text())["remedies"]["wnut17"]
    assert [(remedy["label"], remedy["calibration"], remedy["verdict"]) for remedy in remedies] == [
        ("focal gamma=2", "none", "above CE")
    ]


def test_loss_share_section_plots_and_tabulates_the_share_of_o_of_the_lowest_seed(tmp_path):
    config = {**CONFIG, "name": "shares", "title": "Loss shares", "section": "loss_shares", "seeds": [1, 2]}
    config["losses"] = [{"loss": "ce"}, {"loss": "ce", "sentence_sampling": "repeat_factor", "repeat_threshold": 0.3}]
    results_dir = tmp_path / "runs"
    for run in expand_study(config):
        record = hand_made_record(run, SCORES["ce"][run.seed - 1])
        outside = [0.9, 0.6, 0.5] if not run.sampling else [0.8, 0.4, 0.3]
        record["loss_shares"] = [
            {"step": step, "loss": 1.0, "loss_share/O": share + run.seed / 100, "loss_share/person": 1 - share}
            for step, share in zip((10, 20, 30), outside)
        ]
        write_record(results_dir, record)
    path = tmp_path / "shares.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    written = write_report([path], results_dir, tmp_path / "results.md", tmp_path / "img")
    markdown = (tmp_path / "results.md").read_text(encoding="utf-8")
    assert "| ce | 91.0% (step 10) | 61.0% (step 20) | 51.0% (step 30) |" in markdown, "seed 1's values"
    assert "| ce sampling=repeat_factor t=0.3 | 81.0% (step 10) | 41.0% (step 20) | 31.0% (step 30) |" in markdown
    assert [p.name for p in written if p.suffix == ".png"] == ["loss_share_wnut17.png"]
    assert (tmp_path / "img" / "loss_share_wnut17.png").read_bytes().startswith(PNG_SIGNATURE)
    settings = json.loads((tmp_path / "results.json").read_text())["sections"][0]["settings"]
    assert [setting.get("sampling") for setting in settings] == [
        None,
        {"sentence_sampling": "repeat_factor", "repeat_threshold": 0.3},
    ], "only a sampled setting carries `sampling`"


def test_imbalance_section_scores_each_cell_under_viterbi_from_the_stored_logits(tmp_path):
    config = {**CONFIG, "name": "imb", "title": "Imbalance", "section": "imbalance", "seeds": [1]}
    config["losses"] = [{"loss": "ce"}, {"loss": "ce", "sentence_sampling": "weighted", "repeat_threshold": 0.3}]
    labels = ["B-person", "I-person", "O"]
    gold = np.tile([0, 1], 10)  # ten two-word sentences, each one person entity
    # CE's argmax is `O I-person` (an entity of the second word only: none right); Viterbi may not
    # put I-person after O and takes `B-person I-person` (1 + 2 > 1.9 + 1 for `O O`): all right.
    ce_logits = np.tile([[1.0, 0.0, 1.9], [0.0, 2.0, 1.0]], (10, 1)).astype(np.float16)
    results_dir = tmp_path / "runs"
    for run in expand_study(config):
        logits = ce_logits if not run.sampling else np.eye(3, dtype=np.float16)[gold] * 4
        predicted = logits.astype(np.float32).argmax(axis=1)
        outputs = DevOutputs(logits, gold, predicted, np.full(10, 2), labels)
        write_dev_outputs(dev_outputs_path(results_dir, run.run_id), outputs)
        write_record(results_dir, hand_made_record(run, SCORES["ce"][0]))
    path = tmp_path / "imb.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    write_report([path], results_dir, tmp_path / "results.md", tmp_path / "img")
    markdown = (tmp_path / "results.md").read_text(encoding="utf-8")
    section = markdown.split("## Imbalance")[1].split("## Decoding")[0]
    assert "Under Viterbi, the library's decoding" in section
    header = (
        "| loss setting | n | micro F1 | Δ F1 | interval | macro F1 | Δ macro F1 | interval "
        "| R person | R creative-work |"
    )
    assert header in section
    assert "| ce | 1 | 100.0 ± — | — | — | 100.0 ± — | — | — | 100.0 ± — | 0.0 ± — |" in section
    weighted = (
        "| ce sampling=weighted t=0.3 | 1 | 100.0 ± — | +0.0 ± — | [+0.0, +0.0] 0∈ | 100.0 ± — | +0.0 ± — "
        "| [+0.0, +0.0] 0∈ |"
    )
    assert weighted in section, "a perfect run; CE is perfect under Viterbi too"
    assert "| ce | 1 | 0.0 ± — | 100.0 ± — |" in markdown.split("## Decoding")[1], "CE under argmax, then Viterbi"
