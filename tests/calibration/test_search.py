"""Decision-bias calibration: exact conlleval scores, the searches' optima and limits, folding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ner_imbalance.calibration import (
    CalibrationResult,
    classifier_head,
    fold_bias_into_classifier,
    load_word_logits,
    save_word_logits,
    search_bias,
    tags_from_logits,
)
from ner_imbalance.evaluation import evaluate_tags

IOB2_LABELS = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER", "B-product", "I-product"]
IOBES_LABELS = ["O", "B-LOC", "I-LOC", "E-LOC", "S-LOC", "B-PER", "I-PER", "E-PER", "S-PER"]
O, B_LOC, I_LOC, B_PER, I_PER = range(5)


def _random_case(labels: list[str], seed: int, sentences: int = 40) -> tuple[np.ndarray, list[list[str]]]:
    """Random logits (O favoured) and random gold tags, invalid transitions and empty sentences included."""
    generator = np.random.default_rng(seed)
    lengths = generator.integers(0, 12, size=sentences)
    lengths[0] = max(lengths[0], 1)
    logits = generator.normal(size=(int(lengths.sum()), len(labels))).astype(np.float32)
    logits[:, 0] += 1.0
    gold_ids = np.where(generator.random(len(logits)) < 0.6, 0, generator.integers(0, len(labels), len(logits)))
    gold_flat = [labels[index] for index in gold_ids]
    starts = np.concatenate(([0], np.cumsum(lengths)))
    gold = [gold_flat[starts[row] : starts[row + 1]] for row in range(sentences)]
    return logits, gold


def _scores(gold: list[list[str]], logits: np.ndarray, labels: list[str], bias=None) -> dict:
    return evaluate_tags(gold, tags_from_logits(logits, [len(tags) for tags in gold], labels, bias))


@pytest.mark.parametrize("labels", [IOB2_LABELS, IOBES_LABELS], ids=["IOB2", "IOBES"])
@pytest.mark.parametrize("metric", ["micro_f1", "macro_f1"])
def test_search_scores_are_exactly_evaluate_tags(labels, metric):
    """The fast entity counting gives the same floats as evaluate_tags, before and after the bias."""
    for seed in range(12):
        logits, gold = _random_case(labels, seed)
        result = search_bias(logits, gold, labels, mode="per_type", metric=metric, grid_step=0.5, bound=1.0, margin=0)
        for bias, scores in ((None, result.scores_before), (result.bias, result.scores_after)):
            expected = _scores(gold, logits, labels, bias)
            assert scores == {name: expected[name] for name in ("precision", "recall", "f1", "macro_f1")}
        key = "f1" if metric == "micro_f1" else "macro_f1"
        assert result.score_before == result.scores_before[key]
        assert result.score_after == result.scores_after[key]
        assert result.score_after >= result.score_before


@pytest.mark.parametrize("metric", ["micro_f1", "macro_f1"])
def test_outside_search_is_the_best_point_of_its_grid(metric):
    """Brute force with evaluate_tags over the whole O grid: the search finds the maximum, and of
    equal maxima the one closest to no bias."""
    key = "f1" if metric == "micro_f1" else "macro_f1"
    for seed in range(4):
        logits, gold = _random_case(IOB2_LABELS, seed)
        result = search_bias(logits, gold, IOB2_LABELS, mode="outside", metric=metric, outside_step=0.25)
        grid = np.round(np.arange(-20, 21) * 0.25, 10)
        scores = []
        for value in grid:
            bias = np.zeros(len(IOB2_LABELS))
            bias[O] = value
            scores.append(_scores(gold, logits, IOB2_LABELS, bias)[key])
        scores = np.array(scores)
        best = grid[scores == scores.max()]
        assert result.score_after == scores.max()
        assert result.bias[O] == best[np.argmin(np.abs(best))]
        assert np.all(result.bias[1:] == 0)
        assert result.rounds == 0 and result.candidates >= len(grid)


def _hand_made_case() -> tuple[np.ndarray, list[list[str]]]:
    """PER names sit 1.0 below O (missed without a bias); three O words have LOC 0.8 below O
    (false LOC entities once O is lowered by more than 0.8); LOC names are clear."""
    gold = [["B-PER", "I-PER", "O", "O"], ["B-LOC", "O", "O", "B-PER"], ["O", "O", "O", "O"]]
    flat = [tag for tags in gold for tag in tags]
    logits = np.full((len(flat), len(IOB2_LABELS)), -5.0, dtype=np.float32)
    logits[:, O] = 2.0
    for word, tag in enumerate(flat):
        if tag != "O":
            logits[word, IOB2_LABELS.index(tag)] = 1.0 if "PER" in tag else 4.0
    for word in (8, 9, 10):
        logits[word, B_LOC] = 1.2
    return logits, gold


def test_outside_finds_the_known_optimum_of_a_hand_made_case():
    logits, gold = _hand_made_case()
    # O bias t: PER found iff t < -1.0, the false LOCs appear iff t < -0.8. Best: t = 0 (F1 1/2:
    # LOC only) or t < -1 (3 correct of 6 predicted, F1 2/3 > 1/2): the grid point nearest
    # to 0 beyond -1.0 is -1.05.
    result = search_bias(logits, gold, IOB2_LABELS, mode="outside")
    assert result.bias[O] == pytest.approx(-1.05)
    assert result.score_before == 0.5, "the LOC name alone"
    assert result.score_after == pytest.approx(2 * 3 / (3 + 6))
    assert isinstance(result, CalibrationResult) and result.mode == "outside"


def test_per_type_finds_the_known_optimum_and_beats_outside():
    logits, gold = _hand_made_case()
    outside = search_bias(logits, gold, IOB2_LABELS, mode="outside")
    per_type = search_bias(logits, gold, IOB2_LABELS, mode="per_type", grid_step=0.5, bound=2.0, margin=0.005)
    # From O at -1.05: a B-LOC bias of -0.5 removes the false LOCs (LOC 1.2-0.5 < O 2-1.05),
    # keeps the true one; every entity is then right.
    assert per_type.score_after == 1.0 > outside.score_after
    assert per_type.bias[O] == outside.bias[O]
    assert per_type.bias[B_LOC] == -0.5
    assert per_type.nonzero_biases() == {"O": pytest.approx(-1.05), "B-LOC": -0.5}
    assert per_type.rounds == 2, "a second round finds nothing to move and stops"
    assert evaluate_tags(gold, tags_from_logits(logits, [4, 4, 4], IOB2_LABELS, per_type.bias))["f1"] == 1.0


def test_per_type_biases_stay_within_their_bound():
    for seed in range(6):
        logits, gold = _random_case(IOB2_LABELS, seed)
        result = search_bias(
            logits, gold, IOB2_LABELS, mode="per_type", grid_step=0.25, bound=0.5, margin=0, outside_bound=1.0
        )
        assert abs(result.bias[O]) <= 1.0
        assert np.all(np.abs(result.bias[1:]) <= 0.5)
        assert set(np.round(result.bias[1:] / 0.25, 6)) <= {-2.0, -1.0, 0.0, 1.0, 2.0}, "on the coarse grid"


def test_per_type_moves_only_for_a_gain_of_at_least_the_margin():
    logits, gold = _hand_made_case()
    outside = search_bias(logits, gold, IOB2_LABELS, mode="outside")
    gain = 1.0 - outside.score_after
    kept = search_bias(logits, gold, IOB2_LABELS, mode="per_type", margin=gain + 1e-9)
    assert np.array_equal(kept.bias, outside.bias) and kept.score_after == outside.score_after
    moved = search_bias(logits, gold, IOB2_LABELS, mode="per_type", margin=gain - 1e-9)
    assert moved.score_after == 1.0
    for seed in range(6):
        logits, gold = _random_case(IOB2_LABELS, seed)
        start = search_bias(logits, gold, IOB2_LABELS, mode="outside")
        result = search_bias(logits, gold, IOB2_LABELS, mode="per_type", margin=0.02)
        moves = int(np.count_nonzero(result.bias[1:]))
        assert result.score_after - start.score_after >= 0.02 * moves - 1e-12


def test_tags_from_logits_applies_the_bias_and_splits_sentences():
    logits = np.array([[1.0, 0.5, 0, 0, 0], [0.2, 0, 0, 0, 1.0], [2.0, 0, 0, 1.5, 0]], dtype=np.float32)
    labels = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    assert tags_from_logits(logits, [2, 0, 1], labels) == [["O", "I-PER"], [], ["O"]]
    assert tags_from_logits(logits, [2, 0, 1], labels, [-1.0, 0, 0, 0, 0]) == [["B-LOC", "I-PER"], [], ["B-PER"]]
    with pytest.raises(ValueError, match="sentence_lengths add up to 2"):
        tags_from_logits(logits, [2], labels)
    with pytest.raises(ValueError, match="one value per label"):
        tags_from_logits(logits, [3], labels, [1.0])


def test_bad_input_is_one_clear_error():
    logits, gold = _hand_made_case()
    with pytest.raises(ValueError, match="mode must be one of outside, per_type"):
        search_bias(logits, gold, IOB2_LABELS, mode="none")
    with pytest.raises(ValueError, match="metric must be one of"):
        search_bias(logits, gold, IOB2_LABELS, mode="outside", metric="f1")
    with pytest.raises(ValueError, match="grid_step must be > 0"):
        search_bias(logits, gold, IOB2_LABELS, mode="per_type", grid_step=0)
    with pytest.raises(ValueError, match="margin must be >= 0"):
        search_bias(logits, gold, IOB2_LABELS, mode="per_type", margin=-0.1)
    with pytest.raises(ValueError, match="rows but gold_tags has 11 words"):
        search_bias(logits, [gold[0][:-1], *gold[1:]], IOB2_LABELS, mode="outside")
    with pytest.raises(ValueError, match="gold tag 'B-ORG' is not in label_list"):
        search_bias(logits, [["B-ORG", "O", "O", "O"], *gold[1:]], IOB2_LABELS, mode="outside")
    with pytest.raises(ValueError, match=r"word_logits must be \[num_words, 7\]"):
        search_bias(logits[:, :3], gold, IOB2_LABELS, mode="outside")
    bad = logits.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        search_bias(bad, gold, IOB2_LABELS, mode="outside")


def test_folding_adds_the_bias_to_the_logits(tiny_bert_factory):
    model = tiny_bert_factory(len(IOB2_LABELS)).eval()
    inputs = {"input_ids": torch.tensor([[2, 7, 9, 11, 3]]), "attention_mask": torch.ones(1, 5, dtype=torch.long)}
    bias = np.array([-1.05, 0.5, 0, -0.5, 0, 2.0, 0])
    with torch.no_grad():
        before = model(**inputs).logits
        fold_bias_into_classifier(model, bias)
        after = model(**inputs).logits
    torch.testing.assert_close(after, before + torch.tensor(bias, dtype=torch.float32), rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="bias has shape"):
        fold_bias_into_classifier(model, bias[:3])


def test_folding_finds_a_head_by_its_outputs_and_refuses_one_without_bias():
    class Tagger(torch.nn.Module):
        def __init__(self, bias: bool) -> None:
            super().__init__()
            self.config = type("Config", (), {"num_labels": 3})()
            self.encoder = torch.nn.Linear(4, 8)
            self.score = torch.nn.Linear(8, 3, bias=bias)

    tagger = Tagger(bias=True)
    assert classifier_head(tagger) is tagger.score
    before = tagger.score.bias.detach().clone()
    fold_bias_into_classifier(tagger, [1.0, 0.0, -1.0])
    torch.testing.assert_close(tagger.score.bias.detach(), before + torch.tensor([1.0, 0.0, -1.0]))
    with pytest.raises(ValueError, match="has no bias"):
        fold_bias_into_classifier(Tagger(bias=False), [1.0, 0.0, -1.0])
    ambiguous = Tagger(bias=True)
    ambiguous.other = torch.nn.Linear(8, 3)
    with pytest.raises(ValueError, match="cannot tell the classification head"):
        classifier_head(ambiguous)


def test_word_logits_file_round_trip(tmp_path):
    logits, gold = _hand_made_case()
    path = tmp_path / "word_logits_validation.npz"
    save_word_logits(path, logits, [4, 4, 4], IOB2_LABELS)
    loaded, lengths, labels = load_word_logits(path)
    assert np.array_equal(loaded, logits.astype(np.float16).astype(np.float32))
    assert lengths.dtype == np.int64 and lengths.tolist() == [4, 4, 4]
    assert labels == IOB2_LABELS
    with np.load(path, allow_pickle=False) as data:
        assert data["logits"].dtype == np.float16
