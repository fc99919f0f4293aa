"""Augmentation keys in a study config's `losses` entries (`study.grid`), and config 12.

- `augment` and `augment_rate` (with the `repeat_threshold` they use) are a data-level remedy kept
  in the run's `sampling`, named in its label and id; runs without them keep their ids;
- augmentation alone keeps the budget (no steps from the full set), and half-given keys are refused;
- the runner builds the run's `DataArguments` with them;
- config 12's cells without augmentation are config 08's runs.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_models import TINY_CORPUS

from ner_imbalance.study.grid import StudyConfigError, expand_study, load_study_config
from ner_imbalance.study.runner import build_arguments

ROOT = Path(__file__).resolve().parents[2]
AUGMENT = {"augment": "mention_replacement", "augment_rate": 0.1, "repeat_threshold": 0.3}


def grid(*losses: dict) -> dict:
    return {
        "name": "augmentation",
        "training": {"num_train_epochs": 1},
        "datasets": {
            "tiny": {"train_file": str(TINY_CORPUS / "train.conll"), "validation_file": str(TINY_CORPUS / "dev.conll")}
        },
        "seeds": [1],
        "entity_keep_ratios": [1.0, 0.3],
        "equal_steps": True,
        "losses": list(losses),
    }


def test_augmentation_is_a_setting_of_its_own_and_leaves_other_ids_alone():
    plain_only = expand_study(grid({"loss": "ce"}, {"loss": "focal", "gamma": 3.0, "sentence_sampling": "repeat_factor",
                                                     "repeat_threshold": 0.3}))  # fmt: skip
    runs = expand_study(
        grid(
            {"loss": "ce"},
            {"loss": "focal", "gamma": 3.0, "sentence_sampling": "repeat_factor", "repeat_threshold": 0.3},
            {"loss": "ce", **AUGMENT},
            {"loss": "ce", "augment": "none"},
        )
    )
    keep1 = [run for run in runs if run.entity_keep_ratio == 1.0]
    assert [run.run_id for run in runs if "augment" not in run.sampling] == [run.run_id for run in plain_only]
    augmented = keep1[2]
    assert augmented.sampling == AUGMENT and augmented.hyperparameters == {}
    assert augmented.label == "ce augment=mention_replacement p=0.1 t=0.3"
    assert not augmented.steps_from_full_set, "augmentation keeps the epoch's length and the budget"
    assert len(keep1) == 3, "`augment: none` is the plain CE run"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"loss": "ce", "augment_rate": 0.1}, "`augment_rate` needs an `augment`"),
        ({"loss": "ce", "augment": "mention_replacement"}, "`augment` needs an `augment_rate`"),
        ({"loss": "ce", "repeat_threshold": 0.3}, "needs a `sentence_sampling` or an `augment`"),
    ],
)
def test_half_given_augmentation_keys_are_refused(entry, message):
    with pytest.raises(StudyConfigError, match=message):
        expand_study(grid(entry))


def test_the_runner_passes_the_augmentation_to_the_data_arguments(tmp_path):
    run = expand_study(grid({"loss": "ce", **AUGMENT}))[0]
    data = build_arguments(run, tmp_path / "run").data
    assert (data.augment, data.augment_rate, data.repeat_threshold) == ("mention_replacement", 0.1, 0.3)


def test_config_12_shares_the_cells_without_augmentation_with_config_08():
    sampling = expand_study(load_study_config(ROOT / "configs/study/08_sentence_sampling_wnut17.yaml"))
    replacement = expand_study(load_study_config(ROOT / "configs/study/12_mention_replacement_wnut17.yaml"))
    plain = {run.run_id for run in replacement if "augment" not in run.sampling}
    assert len(plain) == 12 and plain <= {run.run_id for run in sampling}
    augmented = [run for run in replacement if "augment" in run.sampling]
    assert len(augmented) == 12 and not {run.run_id for run in augmented} & {run.run_id for run in sampling}
