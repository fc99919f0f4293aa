"""Per-token losses: identities between losses, GHM-C against a slow reference, masking,
normalisation, low-precision logits, gradcheck, torch.compile and distributed GHM-C."""

from __future__ import annotations

import math
import re
import socket
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from tiny_models import REPO

import ner_imbalance.losses
from ner_imbalance.losses import (
    LOSS_NAMES,
    LOSS_REGISTRY,
    GHMCLoss,
    TokenLoss,
    build_loss,
    declared_hyperparameters,
    loss_hyperparameters,
)

NUM_CLASSES = 13
# A skewed training prior (O most frequent), as the logit-adjusted loss gets it from the corpus.
PRIOR = (
    torch.arange(NUM_CLASSES, 0, -1).double() ** 3 / (torch.arange(NUM_CLASSES, 0, -1).double() ** 3).sum()
).tolist()
# What a loss cannot be built without, from what its class declares.
REQUIRED = {name: {"class_prior": PRIOR} for name in LOSS_NAMES if LOSS_REGISTRY[name].requires_class_prior}

# One configuration per loss whose value does not depend on the rest of the batch.
BATCH_INDEPENDENT = [
    ("ce", {}),
    ("ce", {"label_smoothing": 0.1}),
    ("logit_adjusted", {"class_prior": PRIOR}),
    ("logit_adjusted", {"class_prior": PRIOR, "tau": 0.5, "label_smoothing": 0.2}),
    ("dice", {}),
    ("dice", {"alpha": 0.0, "smoothing": 0.5}),
    ("dice", {"alpha": 0.3}),
    ("focal", {"gamma": 2.0}),
    ("focal", {"gamma": 0.5, "alpha": 0.25, "outside_label_id": 0}),
    ("focal", {"gamma": 2.0, "variant": "sigmoid"}),
    ("focal", {"gamma": 0.5, "alpha": 0.25, "outside_label_id": 0, "variant": "sigmoid"}),
    ("softened", {"K": 1.0}),
    ("softened", {"K": 2.5, "variant": "literal"}),
    ("truncated", {"threshold": 0.5}),
    ("ghmc", {"bins": 1, "momentum": 0.0}),
    ("ghmc", {"bins": 1, "momentum": 0.0, "variant": "sigmoid"}),
]
# Every built-in loss with its defaults and with each other choice of each categorical
# hyperparameter it declares (softened's, GHM-C's and focal's `variant`), then hand-picked values.
EVERY_LOSS = [
    (name, {**REQUIRED.get(name, {}), **choice})
    for name in LOSS_NAMES
    for choice in [
        {},
        *(
            {hyperparameter.name: value}
            for hyperparameter in declared_hyperparameters(name)
            for value in hyperparameter.choices or ()
            if value != hyperparameter.default
        ),
    ]
] + [
    ("ce", {"label_smoothing": 0.1}),
    ("logit_adjusted", {"class_prior": PRIOR, "tau": 2.0, "label_smoothing": 0.1}),
    ("dice", {"alpha": 0.5, "smoothing": 0.1}),
    ("focal", {"gamma": 0.5, "alpha": 0.25, "outside_label_id": 0}),
    ("focal", {"gamma": 0.5, "alpha": 0.25, "outside_label_id": 0, "variant": "sigmoid"}),
    ("softened", {"K": 2.5, "variant": "literal"}),
    ("ghmc", {"momentum": 0.0}),
    ("ghmc", {"momentum": 0.75, "variant": "sigmoid"}),
]


def config_id(config: tuple[str, dict[str, Any]]) -> str:
    name, hyperparameters = config
    shown = {key: value for key, value in hyperparameters.items() if key != "class_prior"}
    return "-".join([name, *(f"{key}={value}" for key, value in shown.items())])


def random_batch(
    shape: tuple[int, ...] = (4, 9),
    num_classes: int = NUM_CLASSES,
    seed: int = 0,
    scale: float = 3.0,
    dtype: torch.dtype = torch.float32,
    ignored_fraction: float = 0.2,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits `[*shape, C]` with `requires_grad` and labels `[*shape]`, some of them -100."""
    generator = torch.Generator().manual_seed(seed)
    logits = (scale * torch.randn(*shape, num_classes, generator=generator)).to(dtype).requires_grad_()
    labels = torch.randint(0, num_classes, shape, generator=generator)
    ignored = torch.rand(shape, generator=generator) < ignored_fraction
    return logits, labels.masked_fill(ignored, -100)


def value_and_grad(loss_fn: torch.nn.Module, logits: torch.Tensor, labels: torch.Tensor, **kwargs: Any):
    loss = loss_fn(logits, labels, **kwargs)
    (grad,) = torch.autograd.grad(loss, logits)
    return loss.detach(), grad


def assert_same_loss(first: torch.nn.Module, second: torch.nn.Module, logits: torch.Tensor, labels: torch.Tensor):
    first_loss, first_grad = value_and_grad(first, logits, labels)
    second_loss, second_grad = value_and_grad(second, logits, labels)
    torch.testing.assert_close(first_loss, second_loss)
    torch.testing.assert_close(first_grad, second_grad)


# Registry and hyperparameter checks


def test_loss_names_and_registry():
    # A loss is one file plus one registration: the built-ins are the registry's first entries, each
    # a TokenLoss defined in its own public module of ner_imbalance/losses/, and every such module
    # defines a built-in (private modules, `_*.py`, hold the shared machinery).
    assert len(LOSS_NAMES) == len(set(LOSS_NAMES)) > 0
    assert tuple(LOSS_REGISTRY)[: len(LOSS_NAMES)] == LOSS_NAMES
    losses_folder = Path(ner_imbalance.losses.__file__).parent
    loss_modules = {path.stem for path in losses_folder.glob("*.py") if not path.name.startswith("_")}
    modules_of_built_ins = []
    for name in LOSS_NAMES:
        assert name.isidentifier()
        loss_class = LOSS_REGISTRY[name]
        assert isinstance(loss_class, type) and issubclass(loss_class, TokenLoss)
        package, _, module = loss_class.__module__.rpartition(".")
        assert package == "ner_imbalance.losses" and module in loss_modules, (name, loss_class.__module__)
        modules_of_built_ins.append(module)
        assert isinstance(build_loss(name, **REQUIRED.get(name, {})), TokenLoss)
    assert sorted(modules_of_built_ins) == sorted(loss_modules), "one public module per built-in loss"
    # Defaults chosen by the loss study's sweep on WNUT-17 dev (docs/results.md).
    assert loss_hyperparameters("focal")["gamma"] == 3.0
    assert loss_hyperparameters("softened")["K"] == 4.0
    assert loss_hyperparameters("softened")["variant"] == "argmax"
    assert loss_hyperparameters("ghmc") == {
        "bins": 10,
        "momentum": 0.0,
        "bias_correction": True,
        "variant": "softmax",
        "class_weights": None,
        "ignore_index": -100,
        "reduction": "mean",
    }


def test_the_package_description_names_every_built_in_loss_and_class_weights():
    tomllib = pytest.importorskip("tomllib")
    description = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["description"]
    for name in LOSS_NAMES:
        assert re.search(rf"(?<!\w){re.escape(name)}(?!\w)", description), f"pyproject.toml's description lacks {name}"
    assert "class weights" in description


@pytest.mark.parametrize(
    ("name", "hyperparameters", "argument"),
    [
        ("nope", {}, "loss name"),
        ("focal", {"gamma": -0.1}, "gamma"),
        ("focal", {"alpha": 0.25}, "outside_label_id"),
        ("focal", {"alpha": 1.5, "outside_label_id": 0}, "alpha"),
        ("focal", {"alpha": [1.0, 2.0], "num_labels": 3}, "alpha"),
        ("focal", {"bins": 10}, "accepted"),
        ("focal", {"variant": "softmax_sigmoid"}, "variant"),
        ("softened", {"K": 0.0}, "K"),
        ("softened", {"variant": "exact"}, "variant"),
        ("truncated", {"threshold": 0.0}, "threshold"),
        ("ghmc", {"bins": 0}, "bins"),
        ("ghmc", {"momentum": 1.0}, "momentum"),
        ("ghmc", {"momentum": -0.5}, "momentum"),
        ("ghmc", {"variant": "softmax_focal"}, "variant"),
        ("ce", {"class_weights": [1.0, 2.0], "num_labels": 3}, "class_weights"),
        ("ce", {"class_weights": [1.0, -2.0]}, "class_weights"),
        ("ce", {"reduction": "average"}, "reduction"),
        ("ce", {"label_smoothing": 1.5}, "label_smoothing"),
        ("ce", {"label_smoothing": -0.1}, "label_smoothing"),
        ("focal", {"label_smoothing": 0.1}, "label_smoothing"),
        ("softened", {"label_smoothing": 0.1}, "label_smoothing"),
        ("truncated", {"label_smoothing": 0.1}, "label_smoothing"),
        ("ghmc", {"label_smoothing": 0.1}, "label_smoothing"),
        ("dice", {"label_smoothing": 0.1}, "label_smoothing"),
        ("logit_adjusted", {}, "class_prior"),
        ("logit_adjusted", {"class_prior": [0.5, 0.5, 0.0]}, "class_prior"),
        ("logit_adjusted", {"class_prior": [0.5, -0.5]}, "class_prior"),
        ("logit_adjusted", {"class_prior": [0.5, 0.5], "num_labels": 3}, "class_prior"),
        ("logit_adjusted", {"class_prior": [0.5, 0.5], "tau": -1.0}, "tau"),
        ("logit_adjusted", {"class_prior": [0.5, 0.5], "tau": float("nan")}, "tau"),
        ("dice", {"alpha": -0.1}, "alpha"),
        ("dice", {"smoothing": 0.0}, "smoothing"),
        ("dice", {"smoothing": float("inf")}, "smoothing"),
    ],
)
def test_bad_hyperparameters_raise_value_error_naming_the_argument(name, hyperparameters, argument):
    with pytest.raises(ValueError, match=argument):
        build_loss(name, **hyperparameters)


def test_class_weights_of_the_wrong_length_for_the_logits_raise():
    logits, labels = random_batch()
    with pytest.raises(ValueError, match="class_weights"):
        build_loss("ce", class_weights=[1.0] * (NUM_CLASSES - 1))(logits, labels)


def test_class_weights_are_a_buffer_that_is_not_saved():
    loss_fn = build_loss("focal", class_weights=[1.0] * NUM_CLASSES)
    assert "class_weights" in dict(loss_fn.named_buffers())
    assert loss_fn.class_weights.dtype == torch.float32
    assert "class_weights" not in loss_fn.state_dict()


# Identities between losses


def test_focal_with_gamma_zero_is_cross_entropy():
    logits, labels = random_batch(seed=1)
    weights = torch.linspace(0.5, 2.0, NUM_CLASSES)
    assert_same_loss(build_loss("focal", gamma=0.0), build_loss("ce"), logits, labels)
    assert_same_loss(
        build_loss("focal", gamma=0.0, class_weights=weights), build_loss("ce", class_weights=weights), logits, labels
    )


def test_cross_entropy_matches_torch():
    logits, labels = random_batch(seed=2)
    weights = torch.linspace(0.5, 2.0, NUM_CLASSES)
    num_valid_tokens = (labels != -100).sum()
    flat_logits, flat_labels = logits.reshape(-1, NUM_CLASSES), labels.reshape(-1)
    torch.testing.assert_close(build_loss("ce")(logits, labels), F.cross_entropy(flat_logits, flat_labels))
    weighted = F.cross_entropy(flat_logits, flat_labels, weight=weights, reduction="sum") / num_valid_tokens
    torch.testing.assert_close(build_loss("ce", class_weights=weights)(logits, labels), weighted)


def test_softened_argmax_with_k_one_is_focal_with_gamma_one():
    logits, labels = random_batch(seed=3, num_classes=NUM_CLASSES)
    assert_same_loss(build_loss("softened", K=1.0, variant="argmax"), build_loss("focal", gamma=1.0), logits, labels)


@pytest.mark.parametrize("variant", ["argmax", "literal"])
@pytest.mark.parametrize("steepness", [0.5, 1.0, 3.0])
def test_softened_with_two_classes_is_the_binary_formula(variant, steepness):
    logits, labels = random_batch(seed=4, num_classes=2, ignored_fraction=0.0)
    softened = build_loss("softened", K=steepness, variant=variant, reduction="none")
    loss = softened(logits, labels)
    (grad,) = torch.autograd.grad(loss.sum(), logits)

    target_logit = logits.gather(-1, labels.unsqueeze(-1)).squeeze(-1)
    other_logit = logits.gather(-1, (1 - labels).unsqueeze(-1)).squeeze(-1)
    margin = target_logit - other_logit
    expected = -torch.sigmoid(-steepness * margin) * F.logsigmoid(margin)
    (expected_grad,) = torch.autograd.grad(expected.sum(), logits)
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(grad, expected_grad)


def test_softened_detach_weight_keeps_the_value_and_drops_the_gate_gradient():
    logits, labels = random_batch(seed=5)
    attached, attached_grad = value_and_grad(build_loss("softened", K=2.0), logits, labels)
    detached, detached_grad = value_and_grad(build_loss("softened", K=2.0, detach_weight=True), logits, labels)
    torch.testing.assert_close(attached, detached)
    assert not torch.allclose(attached_grad, detached_grad)


def test_ghmc_with_one_bin_and_no_momentum_is_cross_entropy():
    logits, labels = random_batch(seed=6)
    assert_same_loss(build_loss("ghmc", bins=1, momentum=0.0), build_loss("ce"), logits, labels)


def test_sigmoid_ghmc_with_one_bin_is_one_vs_rest_binary_cross_entropy_over_token_class_pairs():
    logits, labels = random_batch(seed=6)
    valid = labels != -100
    loss, grad = value_and_grad(build_loss("ghmc", bins=1, variant="sigmoid"), logits, labels)
    one_hot = F.one_hot(labels[valid], NUM_CLASSES).float()
    expected = F.binary_cross_entropy_with_logits(logits[valid], one_hot)
    (expected_grad,) = torch.autograd.grad(expected, logits)
    torch.testing.assert_close(loss, expected.detach())
    torch.testing.assert_close(grad, expected_grad)


def test_truncated_drops_confident_tokens_and_keeps_cross_entropy_elsewhere():
    logits, labels = random_batch(seed=7, scale=4.0, ignored_fraction=0.0)
    labels[:2] = logits[:2].argmax(-1)
    truncated = build_loss("truncated", threshold=0.5, reduction="none")(logits, labels)
    cross_entropy = build_loss("ce", reduction="none")(logits, labels)
    confident = torch.softmax(logits, -1).gather(-1, labels.unsqueeze(-1)).squeeze(-1) > 0.5
    assert confident.any() and (~confident).any()
    torch.testing.assert_close(truncated, torch.where(confident, 0.0, cross_entropy))
    assert_same_loss(build_loss("truncated", threshold=1.0), build_loss("ce"), logits, labels)


def test_focal_alpha_float_weights_entities_by_alpha_and_outside_by_one_minus_alpha():
    logits, labels = random_batch(seed=8, ignored_fraction=0.0)
    plain = build_loss("focal", reduction="none")(logits, labels)
    balanced = build_loss("focal", alpha=0.25, outside_label_id=0, reduction="none")(logits, labels)
    torch.testing.assert_close(balanced, plain * torch.where(labels == 0, 0.75, 0.25))
    per_class = torch.rand(NUM_CLASSES, generator=torch.Generator().manual_seed(8))
    vector = build_loss("focal", alpha=per_class, num_labels=NUM_CLASSES, reduction="none")(logits, labels)
    torch.testing.assert_close(vector, plain * per_class[labels])


@pytest.mark.parametrize("gamma", [0.2, 0.5, 0.9])
def test_focal_with_gamma_below_one_has_finite_gradients_where_p_t_is_one(gamma):
    logits = torch.tensor([[100.0, 0.0, 0.0], [0.0, 100.0, 0.0], [1.0, 2.0, 3.0]], requires_grad=True)
    labels = torch.tensor([0, 1, 2])
    loss, grad = value_and_grad(build_loss("focal", gamma=gamma), logits, labels)
    assert torch.isfinite(loss) and torch.isfinite(grad).all()
    assert grad[:2].abs().max() < 1e-6


# Sigmoid (one-vs-rest) focal loss


def reference_sigmoid_focal(
    logits: torch.Tensor, labels: torch.Tensor, gamma: float, column_alpha: torch.Tensor | None = None
) -> torch.Tensor:
    """torchvision's `sigmoid_focal_loss` written out on one-hot targets, with alpha per column instead of
    per positive/negative pair, averaged over classes, then over the valid tokens."""
    flat_logits, flat_labels = logits.reshape(-1, logits.shape[-1]), labels.reshape(-1)
    valid = flat_labels != -100
    x = flat_logits[valid]
    targets = F.one_hot(flat_labels[valid], logits.shape[-1]).to(x.dtype)
    p = torch.sigmoid(x)
    ce = F.binary_cross_entropy_with_logits(x, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    pair_losses = ce * (1 - p_t) ** gamma
    if column_alpha is not None:
        pair_losses = pair_losses * column_alpha.to(x.dtype)
    return pair_losses.mean(-1).sum() / valid.sum()


SIGMOID_ALPHAS = {
    "no_alpha": ({}, None),
    "per_class": (
        {"alpha": torch.linspace(0.1, 1.3, NUM_CLASSES).tolist()},
        torch.linspace(0.1, 1.3, NUM_CLASSES, dtype=torch.float64),
    ),
    # A float alpha: alpha for every entity column, 1 - alpha for the O column (id 0 here).
    "float": ({"alpha": 0.25, "outside_label_id": 0}, torch.tensor([0.75] + [0.25] * (NUM_CLASSES - 1))),
}


@pytest.mark.parametrize("alpha", SIGMOID_ALPHAS, ids=str)
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0, 3.0])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sigmoid_focal_matches_the_torchvision_formula(gamma, alpha, dtype):
    hyperparameters, column_alpha = SIGMOID_ALPHAS[alpha]
    logits, labels = random_batch(seed=70, dtype=dtype)
    loss_fn = build_loss("focal", gamma=gamma, variant="sigmoid", **hyperparameters)
    loss, grad = value_and_grad(loss_fn, logits, labels)
    expected = reference_sigmoid_focal(logits, labels, gamma, column_alpha)
    (expected_grad,) = torch.autograd.grad(expected, logits)
    assert loss.dtype == dtype
    torch.testing.assert_close(loss, expected.detach())
    torch.testing.assert_close(grad, expected_grad)


def test_sigmoid_focal_with_gamma_zero_and_no_alpha_is_binary_cross_entropy_averaged_over_classes():
    logits, labels = random_batch(seed=71)
    valid = labels != -100
    loss, grad = value_and_grad(build_loss("focal", gamma=0.0, variant="sigmoid"), logits, labels)
    expected = F.binary_cross_entropy_with_logits(logits[valid], F.one_hot(labels[valid], NUM_CLASSES).float())
    (expected_grad,) = torch.autograd.grad(expected, logits)
    torch.testing.assert_close(loss, expected.detach())
    torch.testing.assert_close(grad, expected_grad)
    # Per token: the mean over classes of the binary cross-entropies, not the softmax cross-entropy.
    per_token = build_loss("focal", gamma=0.0, variant="sigmoid", reduction="none")(logits, labels)
    binary = F.binary_cross_entropy_with_logits(
        logits, F.one_hot(labels.clamp_min(0), NUM_CLASSES).float(), reduction="none"
    ).mean(-1)
    torch.testing.assert_close(per_token, torch.where(valid, binary, 0.0))
    assert not torch.allclose(per_token, build_loss("ce", reduction="none")(logits, labels))


@pytest.mark.parametrize("gamma", [0.2, 0.5, 2.0])
def test_sigmoid_focal_on_confident_logits_is_zero_with_finite_gradients(gamma):
    # Every binary term is right with sigmoid(100) = 1 in float32: 1 - q underflows and is clamped.
    logits = torch.tensor([[100.0, -100.0, -100.0], [-100.0, 100.0, -100.0], [1.0, -2.0, 3.0]], requires_grad=True)
    labels = torch.tensor([0, 1, 2])
    loss, grad = value_and_grad(build_loss("focal", gamma=gamma, variant="sigmoid", reduction="sum"), logits, labels)
    assert torch.isfinite(loss) and torch.isfinite(grad).all()
    assert grad[:2].abs().max() < 1e-6 and grad[2].abs().max() > 1e-3


def test_focal_variant_is_a_declared_flag_and_shown_in_the_repr():
    (variant,) = [
        hyperparameter for hyperparameter in declared_hyperparameters("focal") if hyperparameter.name == "variant"
    ]
    assert (variant.flag_name, variant.default, variant.choices) == ("focal_variant", "softmax", ("softmax", "sigmoid"))
    assert "variant='sigmoid'" in repr(build_loss("focal", variant="sigmoid"))
    assert "variant='softmax'" in repr(build_loss("focal"))


# Class weights, ignore_index, normalisation


@pytest.mark.parametrize("config", EVERY_LOSS, ids=config_id)
def test_class_weights_multiply_each_token_by_the_weight_of_its_gold_class(config):
    name, hyperparameters = config
    logits, labels = random_batch(seed=9)
    weights = torch.linspace(0.1, 3.0, NUM_CLASSES)
    plain = build_loss(name, reduction="none", **hyperparameters)(logits, labels)
    weighted = build_loss(name, reduction="none", class_weights=weights.tolist(), **hyperparameters)(logits, labels)
    torch.testing.assert_close(weighted, plain * weights[labels.clamp_min(0)])


@pytest.mark.parametrize("config", EVERY_LOSS, ids=config_id)
def test_ignored_positions_count_for_nothing(config):
    name, hyperparameters = config
    logits, labels = random_batch(seed=10, ignored_fraction=0.4)
    labels = labels.masked_fill(labels == -100, -1)
    valid = labels != -1
    per_token = build_loss(name, ignore_index=-1, reduction="none", **hyperparameters)(logits, labels)
    assert per_token.shape == labels.shape and (per_token[~valid] == 0).all()
    masked = build_loss(name, ignore_index=-1, **hyperparameters)(logits, labels)
    on_valid_tokens = build_loss(name, **hyperparameters)(logits[valid], labels[valid])
    torch.testing.assert_close(masked, on_valid_tokens)


@pytest.mark.parametrize("config", EVERY_LOSS, ids=config_id)
def test_an_all_ignored_batch_gives_zero_with_finite_zero_gradients(config):
    name, hyperparameters = config
    logits, labels = random_batch(seed=11)
    loss = build_loss(name, **hyperparameters)(logits, torch.full_like(labels, -100))
    assert loss.grad_fn is not None and loss.item() == 0.0
    (grad,) = torch.autograd.grad(loss, logits)
    assert (grad == 0).all()


@pytest.mark.parametrize("config", BATCH_INDEPENDENT, ids=config_id)
def test_micro_batches_normalised_by_the_window_token_count_add_up_to_the_whole_batch(config):
    name, hyperparameters = config
    logits, labels = random_batch(shape=(8, 7), seed=12)
    loss_fn = build_loss(name, **hyperparameters)
    whole, whole_grad = value_and_grad(loss_fn, logits, labels)
    num_items_in_batch = (labels != -100).sum()
    micro_losses = [
        loss_fn(logits_part, labels_part, num_items_in_batch=num_items_in_batch)
        for logits_part, labels_part in zip(logits.chunk(4), labels.chunk(4), strict=True)
    ]
    accumulated = torch.stack(micro_losses).sum()
    (accumulated_grad,) = torch.autograd.grad(accumulated, logits)
    torch.testing.assert_close(accumulated, whole)
    torch.testing.assert_close(accumulated_grad, whole_grad)
    as_int = loss_fn(logits, labels, num_items_in_batch=int(num_items_in_batch))
    torch.testing.assert_close(as_int.detach(), whole)


def test_num_items_in_batch_of_zero_gives_zero_with_a_gradient_graph():
    logits, labels = random_batch(seed=13)
    loss = build_loss("ce")(logits, labels, num_items_in_batch=torch.tensor(0))
    assert loss.item() == 0.0 and loss.grad_fn is not None


# Precision


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("config", EVERY_LOSS, ids=config_id)
def test_half_precision_logits_up_to_1e4_give_finite_float32_loss_and_gradients(config, dtype):
    name, hyperparameters = config
    generator = torch.Generator().manual_seed(14)
    logits = (torch.randint(-1, 2, (6, 5, NUM_CLASSES), generator=generator) * 1e4).to(dtype)
    logits = logits + torch.randn(logits.shape, generator=generator).to(dtype)
    logits.requires_grad_()
    labels = torch.randint(0, NUM_CLASSES, (6, 5), generator=generator)
    loss, grad = value_and_grad(build_loss(name, **hyperparameters), logits, labels)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert grad.dtype == dtype and torch.isfinite(grad).all()


GRADCHECK_CONFIGS = [
    ("ce", {}),
    ("focal", {"gamma": 2.0, "alpha": [0.2, 0.4, 0.6, 0.8]}),
    ("focal", {"gamma": 0.5, "alpha": 0.25, "outside_label_id": 0}),
    ("focal", {"gamma": 2.0, "alpha": [0.2, 0.4, 0.6, 0.8], "variant": "sigmoid"}),
    ("focal", {"gamma": 0.5, "alpha": 0.25, "outside_label_id": 0, "variant": "sigmoid"}),
    ("softened", {"K": 2.0}),
    ("softened", {"K": 0.5, "variant": "literal"}),
    ("truncated", {"threshold": 0.4}),
    ("ghmc", {"bins": 4, "momentum": 0.0}),
    ("ghmc", {"bins": 4, "momentum": 0.0, "variant": "sigmoid"}),
    ("ce", {"label_smoothing": 0.2}),
    ("logit_adjusted", {"class_prior": [0.7, 0.2, 0.05, 0.05], "tau": 1.0}),
    ("logit_adjusted", {"class_prior": [0.7, 0.2, 0.05, 0.05], "tau": 0.5, "label_smoothing": 0.1}),
    ("dice", {}),
    ("dice", {"alpha": 0.5, "smoothing": 0.1}),
    ("dice", {"alpha": 0.0}),
]


@pytest.mark.parametrize("config", GRADCHECK_CONFIGS, ids=config_id)
def test_gradcheck_in_float64(config):
    name, hyperparameters = config
    logits, labels = random_batch(shape=(5,), num_classes=4, seed=15, scale=1.0, dtype=torch.float64)
    labels[0] = -100
    loss_fn = build_loss(name, class_weights=[0.5, 1.0, 1.5, 2.0], **hyperparameters)
    assert torch.autograd.gradcheck(lambda x: loss_fn(x, labels), (logits,))


def test_gradcheck_ghmc_with_momentum_in_eval_mode():
    logits, labels = random_batch(shape=(5,), num_classes=4, seed=16, scale=1.0, dtype=torch.float64)
    loss_fn = build_loss("ghmc", bins=3, momentum=0.75)
    loss_fn(logits, labels)
    loss_fn.eval()
    assert torch.autograd.gradcheck(lambda x: loss_fn(x, labels), (logits,))


# GHM-C against the textbook loop


class ReferenceGHMC:
    """mmdetection's GHMC loop over bins, with one host read per bin, for softmax g = 1 - p_t."""

    def __init__(self, bins: int, momentum: float, bias_correction: bool):
        self.edges = torch.arange(bins + 1).float() / bins
        self.edges[-1] += 1e-6
        self.bins, self.momentum, self.bias_correction = bins, momentum, bias_correction
        self.moving_average = [0.0] * bins
        self.updates = [0] * bins

    def weights(self, gradient_norms: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        weights = torch.zeros_like(gradient_norms)
        total = max(valid.float().sum().item(), 1.0)
        num_nonempty_bins = 0
        for index in range(self.bins):
            in_bin = (gradient_norms >= self.edges[index]) & (gradient_norms < self.edges[index + 1]) & valid
            count = in_bin.sum().item()
            if count > 0:
                if self.momentum > 0:
                    average = self.momentum * self.moving_average[index] + (1 - self.momentum) * count
                    self.moving_average[index] = average
                    self.updates[index] += 1
                    if self.bias_correction:
                        average /= 1 - self.momentum ** self.updates[index]
                    weights[in_bin] = total / average
                else:
                    weights[in_bin] = total / count
                num_nonempty_bins += 1
        return weights / max(num_nonempty_bins, 1)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        logits, labels = logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1)
        valid = labels != -100
        safe_labels = labels.clamp_min(0)
        log_p_t = torch.log_softmax(logits, -1).gather(-1, safe_labels[:, None]).squeeze(-1)
        weights = self.weights(1 - log_p_t.detach().exp(), valid)
        return (weights * -log_p_t * valid).sum() / max(valid.sum().item(), 1)

    def sigmoid_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The paper's one-vs-rest form, as mmdetection computes it: pairs (token, class)."""
        logits, labels = logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1)
        valid = (labels != -100)[:, None].expand_as(logits)
        targets = torch.zeros_like(logits)
        for row, label in enumerate(labels.tolist()):
            if label != -100:
                targets[row, label] = 1.0
        weights = self.weights((logits.detach().sigmoid() - targets).abs(), valid)
        pair_losses = F.binary_cross_entropy_with_logits(logits, targets, weights * valid, reduction="sum")
        return pair_losses / max(valid.sum().item(), 1)


@pytest.mark.parametrize(
    ("variant", "bins", "momentum", "bias_correction"),
    [
        ("softmax", 10, 0.0, True),
        ("softmax", 10, 0.75, True),
        ("softmax", 10, 0.75, False),
        ("softmax", 7, 0.9, True),
        ("sigmoid", 10, 0.0, True),
        ("sigmoid", 30, 0.75, True),
    ],
)
def test_ghmc_matches_the_slow_reference_loop_over_several_steps(variant, bins, momentum, bias_correction):
    loss_fn = build_loss("ghmc", bins=bins, momentum=momentum, bias_correction=bias_correction, variant=variant)
    reference = ReferenceGHMC(bins, momentum, bias_correction)
    reference_loss = reference.sigmoid_loss if variant == "sigmoid" else reference.loss
    for step in range(4):
        logits, labels = random_batch(shape=(6, 11), seed=100 + step, scale=2.0 + step)
        loss, grad = value_and_grad(loss_fn, logits, labels)
        expected = reference_loss(logits, labels)
        (expected_grad,) = torch.autograd.grad(expected, logits)
        torch.testing.assert_close(loss, expected.detach())
        torch.testing.assert_close(grad, expected_grad)
    torch.testing.assert_close(loss_fn.acc_count, torch.tensor(reference.moving_average, dtype=torch.float32))
    assert loss_fn.bin_updates.tolist() == (reference.updates if momentum > 0 else [0] * bins)
    entries_per_token = NUM_CLASSES if variant == "sigmoid" else 1
    assert float(loss_fn.last_bin_counts.sum()) == entries_per_token * float((labels != -100).sum())


@pytest.mark.parametrize("momentum", [0.0, 0.75])
def test_ghmc_weights_of_gradient_norms_exactly_on_the_edges(momentum):
    bins = 5
    loss_fn = GHMCLoss(bins=bins, momentum=momentum)
    reference = ReferenceGHMC(bins, momentum, bias_correction=True)
    on_edges = torch.cat([loss_fn.edges[:-1], torch.tensor([1.0, 1.0, 0.0, 0.5, 0.2])])
    valid = torch.ones_like(on_edges, dtype=torch.bool)
    valid[-1] = False
    for _ in range(2):
        weights = loss_fn.harmonizing_weights(on_edges, valid)
        torch.testing.assert_close(weights[valid], reference.weights(on_edges, valid)[valid])
    # g = 1 (p_t underflows to 0) falls in the last bin, g = 0 (p_t = 1) in the first.
    assert loss_fn.last_bin_counts.tolist() == [2.0, 1.0, 2.0, 1.0, 3.0]


def test_ghmc_on_logits_that_put_g_at_zero_and_one():
    logits = torch.tensor([[200.0, 0.0, 0.0], [200.0, 0.0, 0.0], [0.0, 0.0, 0.0], [1.0, -1.0, 0.5]], requires_grad=True)
    labels = torch.tensor([0, 1, 2, 2])
    loss_fn = build_loss("ghmc", bins=4, momentum=0.0)
    loss, grad = value_and_grad(loss_fn, logits, labels)
    expected = ReferenceGHMC(4, 0.0, True).loss(logits, labels)
    torch.testing.assert_close(loss, expected.detach())
    assert torch.isfinite(grad).all()
    assert loss_fn.last_bin_counts[0] == 1 and loss_fn.last_bin_counts[-1] == 1


def test_ghmc_bias_correction_makes_the_first_step_equal_to_the_batch_density():
    logits, labels = random_batch(seed=17)
    with_momentum = build_loss("ghmc", momentum=0.9)(logits, labels)
    without = build_loss("ghmc", momentum=0.0)(logits, labels)
    torch.testing.assert_close(with_momentum, without)


def test_ghmc_updates_its_moving_average_in_training_mode_only():
    loss_fn = build_loss("ghmc", momentum=0.75)
    logits, labels = random_batch(seed=18)
    loss_fn.eval()
    eval_loss = loss_fn(logits, labels)
    assert loss_fn.bin_updates.sum() == 0 and loss_fn.acc_count.sum() == 0
    loss_fn.train()
    torch.testing.assert_close(loss_fn(logits, labels), eval_loss)
    assert loss_fn.bin_updates.sum() > 0
    torch.testing.assert_close(loss_fn.statistics()["bin_counts"], loss_fn.last_bin_counts)


def test_ghmc_state_dict_round_trip():
    trained = build_loss("ghmc", momentum=0.75)
    for step in range(3):
        trained(*random_batch(seed=20 + step))
    state = trained.state_dict()
    assert set(state) == {"acc_count", "bin_updates"}
    restored = build_loss("ghmc", momentum=0.75)
    restored.load_state_dict(state)
    logits, labels = random_batch(seed=30)
    torch.testing.assert_close(restored(logits, labels), trained(logits, labels))
    torch.testing.assert_close(restored.state_dict(), trained.state_dict())


# torch.compile (no host synchronisation)


@pytest.mark.parametrize(
    "config",
    [
        *((name, {}) for name in LOSS_NAMES),
        ("ghmc", {"variant": "sigmoid"}),
        ("focal", {"variant": "sigmoid", "alpha": 0.25, "outside_label_id": 0}),
        ("ce", {"label_smoothing": 0.1}),
        ("logit_adjusted", {"label_smoothing": 0.1}),
        ("dice", {"alpha": 0.0}),
    ],
    ids=config_id,
)
def test_torch_compile_fullgraph(config):
    name, hyperparameters = config
    if name == "logit_adjusted":
        hyperparameters = {**hyperparameters, "class_prior": [0.6, 0.2, 0.1, 0.07, 0.03]}
    torch._dynamo.reset()
    logits, labels = random_batch(shape=(3, 4), num_classes=5, seed=40)
    eager_fn, compiled_fn = build_loss(name, **hyperparameters), build_loss(name, **hyperparameters)
    compiled = torch.compile(compiled_fn, fullgraph=True)
    for _ in range(2):
        loss, grad = value_and_grad(compiled, logits, labels)
        expected, expected_grad = value_and_grad(eager_fn, logits, labels)
        torch.testing.assert_close(loss, expected)
        torch.testing.assert_close(grad, expected_grad)
    torch.testing.assert_close(compiled_fn.state_dict(), eager_fn.state_dict())


# Distributed GHM-C


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def distributed_ghmc_worker(rank: int, world_size: int, port: int, variant: str, batches: list, output: Path) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size)
    try:
        loss_fn = build_loss("ghmc", momentum=0.75, variant=variant, reduction="none")
        per_token_losses = []
        for logits, labels in batches:
            half = logits.shape[0] // world_size
            rows = slice(rank * half, (rank + 1) * half)
            per_token_losses.append(loss_fn(logits[rows], labels[rows]))
        torch.save({"losses": per_token_losses, "state": loss_fn.state_dict()}, output / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["softmax", "sigmoid"])
def test_distributed_ghmc_uses_the_density_of_the_global_batch(tmp_path, variant):
    batches = []
    for step in range(2):
        logits, labels = random_batch(shape=(8, 6), seed=50 + step, scale=2.0 + step)
        # Rank 0 gets the confidently right half, rank 1 the rest: local densities differ a lot.
        labels[:4] = logits[:4].argmax(-1)
        batches.append((logits.detach(), labels))
    mp.spawn(distributed_ghmc_worker, args=(2, free_port(), variant, batches, tmp_path), nprocs=2, join=True)

    single = build_loss("ghmc", momentum=0.75, variant=variant, reduction="none")
    expected = [single(logits, labels) for logits, labels in batches]
    ranks = [torch.load(tmp_path / f"rank{rank}.pt") for rank in range(2)]
    for step, expected_losses in enumerate(expected):
        torch.testing.assert_close(torch.cat([rank["losses"][step] for rank in ranks]), expected_losses)
    for rank in ranks:
        torch.testing.assert_close(rank["state"], single.state_dict())
    entries_per_token = NUM_CLASSES if variant == "sigmoid" else 1
    valid_tokens = float((batches[-1][1] != -100).sum())
    assert math.isclose(float(single.last_bin_counts.sum()), entries_per_token * valid_tokens)


# Logit-adjusted cross-entropy (Menon et al., ICLR 2021)


def reference_logit_adjusted(logits: torch.Tensor, labels: torch.Tensor, prior: list[float], tau: float):
    """Token by token: -(x_t + tau log pi_t) + log sum_c exp(x_c + tau log pi_c), over valid tokens / their count."""
    flat_logits, flat_labels = logits.reshape(-1, logits.shape[-1]), labels.reshape(-1).tolist()
    terms = []
    for row, label in enumerate(flat_labels):
        if label == -100:
            continue
        shifted = [flat_logits[row, c] + tau * math.log(prior[c]) for c in range(len(prior))]
        terms.append(torch.logsumexp(torch.stack(shifted), 0) - shifted[label])
    return torch.stack(terms).sum() / len(terms)


@pytest.mark.parametrize("tau", [0.5, 1.0, 2.0])
def test_logit_adjusted_matches_a_token_by_token_reference(tau):
    logits, labels = random_batch(seed=60)
    loss, grad = value_and_grad(build_loss("logit_adjusted", class_prior=PRIOR, tau=tau), logits, labels)
    expected = reference_logit_adjusted(logits, labels, PRIOR, tau)
    (expected_grad,) = torch.autograd.grad(expected, logits)
    torch.testing.assert_close(loss, expected.detach())
    torch.testing.assert_close(grad, expected_grad)


def test_logit_adjusted_is_cross_entropy_of_shifted_logits_and_exactly_ce_at_tau_zero():
    logits, labels = random_batch(seed=61)
    shift = torch.tensor(PRIOR).log()
    weights = torch.linspace(0.5, 2.0, NUM_CLASSES)
    adjusted = build_loss("logit_adjusted", class_prior=PRIOR, tau=1.0, class_weights=weights)
    loss, grad = value_and_grad(adjusted, logits, labels)
    expected, expected_grad = value_and_grad(build_loss("ce", class_weights=weights), logits + shift, labels)
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(grad, expected_grad)
    # The prior's scale does not matter (softmax ignores a constant added to every logit).
    scaled_prior = [7.0 * value for value in PRIOR]
    rescaled = build_loss("logit_adjusted", class_prior=scaled_prior, tau=1.0, class_weights=weights)
    assert_same_loss(adjusted, rescaled, logits, labels)
    at_zero, at_zero_grad = value_and_grad(build_loss("logit_adjusted", class_prior=PRIOR, tau=0.0), logits, labels)
    ce, ce_grad = value_and_grad(build_loss("ce"), logits, labels)
    assert torch.equal(at_zero, ce) and torch.equal(at_zero_grad, ce_grad)


def test_logit_adjusted_asks_a_rare_gold_label_for_a_larger_raw_margin():
    # Equal raw logits: CE is log C whatever the gold label; the adjusted loss is -log(prior of the
    # gold label), small for the frequent label 0 and large for the rare label 12, so training
    # pushes the raw logits of rare labels further (Menon et al.'s label-dependent margin).
    logits = torch.zeros(2, NUM_CLASSES)
    per_token = build_loss("logit_adjusted", class_prior=PRIOR, reduction="none")(logits, torch.tensor([0, 12]))
    assert per_token[0] < math.log(NUM_CLASSES) < per_token[1]
    torch.testing.assert_close(per_token, -torch.tensor([PRIOR[0], PRIOR[12]]).log().float())


# Self-adjusting dice (Li et al., ACL 2020)


def reference_dice(logits: torch.Tensor, labels: torch.Tensor, alpha: float, smoothing: float) -> torch.Tensor:
    """The paper's formula token by token: 1 - (2 s p + gamma) / (s p + 1 + gamma), s = (1 - p)^alpha."""
    flat_logits, flat_labels = logits.reshape(-1, logits.shape[-1]), labels.reshape(-1).tolist()
    terms = []
    for row, label in enumerate(flat_labels):
        if label == -100:
            continue
        p = torch.softmax(flat_logits[row], 0)[label]
        s = (1 - p) ** alpha
        terms.append(1 - (2 * s * p + smoothing) / (s * p + 1 + smoothing))
    return torch.stack(terms).sum() / len(terms)


@pytest.mark.parametrize(("alpha", "smoothing"), [(1.0, 1.0), (0.0, 1.0), (0.5, 0.1), (2.0, 3.0)])
def test_dice_matches_the_papers_formula_token_by_token(alpha, smoothing):
    logits, labels = random_batch(seed=62, scale=2.0, dtype=torch.float64)
    loss, grad = value_and_grad(build_loss("dice", alpha=alpha, smoothing=smoothing), logits, labels)
    expected = reference_dice(logits, labels, alpha, smoothing)
    (expected_grad,) = torch.autograd.grad(expected, logits)
    torch.testing.assert_close(loss, expected.detach())
    torch.testing.assert_close(grad, expected_grad)


def two_class_dice(p: torch.Tensor, **hyperparameters: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token dice loss and its gradient on the gold logit, for gold probabilities `p` (two classes)."""
    gold_logit = torch.logit(p.double()).requires_grad_()
    logits = torch.stack([gold_logit, torch.zeros_like(gold_logit)], -1)
    losses = build_loss("dice", reduction="none", **hyperparameters)(logits, torch.zeros(len(p), dtype=torch.long))
    (grad,) = torch.autograd.grad(losses.sum(), gold_logit)
    return losses.detach(), grad


@pytest.mark.parametrize("alpha", [0.25, 1.0, 3.0])
def test_dice_per_token_optimum_is_p_equal_one_over_one_plus_alpha(alpha):
    p = torch.linspace(0.001, 0.999, 9981)
    losses, grad = two_class_dice(p, alpha=alpha)
    optimum = 1 / (1 + alpha)
    assert abs(float(p[losses.argmin()]) - optimum) < 2e-3
    below, above = p < optimum - 0.01, p > optimum + 0.01
    assert (grad[below] < 0).all() and (grad[above] > 0).all()  # descent moves p towards the optimum
    _, grad_at_optimum = two_class_dice(torch.tensor([optimum], dtype=torch.float64), alpha=alpha)
    assert abs(float(grad_at_optimum)) < 1e-12


def test_dice_with_alpha_zero_is_plain_dice_on_the_gold_probability_smallest_at_p_one():
    p = torch.linspace(0.01, 0.99, 99, dtype=torch.float64)
    losses, grad = two_class_dice(p, alpha=0.0, smoothing=0.5)
    torch.testing.assert_close(losses, 1 - (2 * p + 0.5) / (p + 1.5))
    assert (grad < 0).all() and (losses.diff() < 0).all()


# Label smoothing (cross-entropy-based losses only)


@pytest.mark.parametrize("epsilon", [0.05, 0.1, 0.5, 1.0])
def test_ce_with_label_smoothing_equals_torch_cross_entropy_on_valid_tokens(epsilon):
    logits, labels = random_batch(seed=63)
    flat_logits, flat_labels = logits.reshape(-1, NUM_CLASSES), labels.reshape(-1)
    loss, grad = value_and_grad(build_loss("ce", label_smoothing=epsilon), logits, labels)
    expected = F.cross_entropy(flat_logits, flat_labels, label_smoothing=epsilon)
    (expected_grad,) = torch.autograd.grad(expected, logits)
    torch.testing.assert_close(loss, expected.detach())
    torch.testing.assert_close(grad, expected_grad)


def test_weighted_ce_with_label_smoothing_weights_each_tokens_smoothed_loss_by_its_gold_class():
    # torch's cross_entropy(weight=w, label_smoothing=eps) weights the smoothing term of class c by
    # w_c and divides by the sum of gold weights; here, as for every loss, a token's whole loss is
    # multiplied by its gold class's weight and the sum is divided by the token count (documented
    # in CrossEntropyLoss).
    logits, labels = random_batch(seed=64)
    weights = torch.linspace(0.2, 3.0, NUM_CLASSES)
    flat_logits, flat_labels = logits.reshape(-1, NUM_CLASSES), labels.reshape(-1)
    valid = flat_labels != -100
    per_token = F.cross_entropy(flat_logits, flat_labels, label_smoothing=0.1, reduction="none")
    expected = (weights[flat_labels.clamp_min(0)] * per_token)[valid].sum() / valid.sum()
    (expected_grad,) = torch.autograd.grad(expected, logits)
    loss, grad = value_and_grad(build_loss("ce", class_weights=weights, label_smoothing=0.1), logits, labels)
    torch.testing.assert_close(loss, expected.detach())
    torch.testing.assert_close(grad, expected_grad)


def test_logit_adjusted_with_label_smoothing_smooths_the_shifted_log_probabilities():
    logits, labels = random_batch(seed=65)
    shift = 0.5 * torch.tensor(PRIOR).log()
    loss, grad = value_and_grad(
        build_loss("logit_adjusted", class_prior=PRIOR, tau=0.5, label_smoothing=0.2), logits, labels
    )
    expected = F.cross_entropy((logits + shift).reshape(-1, NUM_CLASSES), labels.reshape(-1), label_smoothing=0.2)
    (expected_grad,) = torch.autograd.grad(expected, logits)
    torch.testing.assert_close(loss, expected.detach())
    torch.testing.assert_close(grad, expected_grad)


def test_only_cross_entropy_based_losses_accept_label_smoothing():
    accepting = {name for name in LOSS_NAMES if "label_smoothing" in loss_hyperparameters(name)}
    assert accepting == {"ce", "logit_adjusted"}
