"""The ONNX Runtime backend of the `Tagger`: export a model folder to ONNX (fp32, optionally int8), tag with it.

    from ner_imbalance.inference.onnx_backend import export_onnx, onnx_tagger, quantize_int8
    export_onnx("runs/wnut17_focal", int8=True)   # writes model.onnx and model.int8-fp32-classifier.onnx there
    quantize_int8("runs/wnut17_focal", "int8-static", calibration=train_sentences)   # another int8 variant
    tagger = onnx_tagger("runs/wnut17_focal", variant="int8-fp32-classifier")
    tagger.tag([["Empire", "State", "Building"]])

The export is `torch.onnx.export` of the folder's token-classification model (dynamic batch and
sequence axes). Every int8 variant starts from ONNX Runtime's transformer fusions (layer norm, GELU)
of that graph and quantises weights to int8 per output channel; the variants (`INT8_RECIPES`) differ
in what they leave in fp32 and in how activations are quantised (per batch at run time, or with
ranges calibrated on training windows). What each costs in F1 and buys in words/s on a converged
WNUT-17 model is in `docs/performance.md` ("int8 on a converged model"): the default,
`int8-fp32-classifier`, was within 0.3 dev F1 of fp32 at 4.7x the words/s of
`transformers.pipeline`. The calibration bias of `ner-train` is already folded into the saved
classifier bias, so every graph carries it.

`OnnxTokenClassifier` offers exactly what `Tagger` uses of a model (`config`, `to`, `eval`, and a
call on the collated batch that returns `.logits`), so an ONNX tagger runs the same windows, word
choice, length-grouped batches, decoding and entity chunking as the torch one: only the forward
pass differs. Needs `pip install 'ner_imbalance[onnx]'` (onnxruntime, onnx, onnxscript).
"""

from __future__ import annotations

import ast
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import AutoConfig, AutoModelForTokenClassification, PretrainedConfig
from transformers.modeling_outputs import TokenClassifierOutput

from ner_imbalance.inference.tagger import Tagger, load_tokenizer, tagging_windows
from ner_imbalance.utils.atomic import atomic_path
from ner_imbalance.utils.extras import import_extra
from ner_imbalance.utils.logging_state import logging_restored

ONNX_EXTRA = "onnx"
OPSET = 18
FP32 = "fp32"
PARTS = ("embeddings", "classifier", "first_layer", "last_layer")
"""The parts of a model an int8 recipe can leave in fp32, found by the module names the exporter records."""


@dataclass(frozen=True)
class Int8Recipe:
    """How an int8 graph is made from the fused fp32 graph (weights int8 per output channel in all).

    Attributes:
        summary: one line for help texts and tables.
        keep_fp32: parts (`PARTS`) whose operators stay fp32.
        op_types: operator types quantised; None: all that dynamic quantisation supports (MatMul with a
            weight, and Gather, which quantises the embedding tables).
        static: activations quantised with ranges calibrated on training windows (QDQ format,
            `quantize_static`), instead of per batch at run time (`quantize_dynamic`).
    """

    summary: str
    keep_fp32: tuple[str, ...] = ()
    op_types: tuple[str, ...] | None = None
    static: bool = False


INT8_RECIPES: dict[str, Int8Recipe] = {
    "int8": Int8Recipe("dynamic int8 of every weight (embedding tables included)"),
    "int8-fp32-classifier": Int8Recipe("dynamic int8, the classifier left in fp32", keep_fp32=("classifier",)),
    "int8-matmul": Int8Recipe(
        "dynamic int8 of the MatMul weights only (the embeddings stay fp32)", op_types=("MatMul",)
    ),
    "int8-matmul-fp32-classifier": Int8Recipe(
        "dynamic int8 of the MatMul weights, the classifier left in fp32",
        keep_fp32=("classifier",),
        op_types=("MatMul",),
    ),
    "int8-fp32-ends": Int8Recipe(
        "dynamic int8 of the MatMul weights, the first and last layers and the classifier left in fp32",
        keep_fp32=("classifier", "first_layer", "last_layer"),
        op_types=("MatMul",),
    ),
    "int8-static": Int8Recipe(
        "static int8 (QDQ) of the MatMuls with a weight, activation ranges calibrated on training windows",
        op_types=("MatMul",),
        static=True,
    ),
}
"""The int8 variants `quantize_int8` makes; `docs/performance.md` measures each on a converged model."""
DEFAULT_INT8 = "int8-fp32-classifier"
"""The int8 variant `export_onnx(int8=True)` writes and `ner-predict --backend onnx` runs by default."""
ONNX_VARIANTS = (FP32, *INT8_RECIPES)
"""The ONNX variants, each a file in the model folder (`onnx_path`)."""
CALIBRATION_SENTENCES = 300
"""Sentences whose windows calibrate a static variant by default (the first of what the caller gives)."""


def onnx_path(model_dir: str | os.PathLike, variant: str = FP32) -> Path:
    """Where `export_onnx` (fp32) and `quantize_int8` write, and `onnx_tagger` reads, `variant` in `model_dir`:
    `model.onnx` for fp32, `model.<variant>.onnx` for an int8 variant."""
    if variant not in ONNX_VARIANTS:
        raise ValueError(f"ONNX variant must be one of {', '.join(ONNX_VARIANTS)}, got {variant!r}")
    return Path(model_dir) / ("model.onnx" if variant == FP32 else f"model.{variant}.onnx")


def exported_graph(model_dir: str | os.PathLike, variant: str = FP32) -> Path:
    """`onnx_path(model_dir, variant)`; a `FileNotFoundError` saying how to export it when it is not there."""
    path = onnx_path(model_dir, variant)
    if not path.is_file():
        how = {
            FP32: f"ner-export-onnx --model {model_dir}",
            DEFAULT_INT8: f"ner-export-onnx --model {model_dir} --int8",
        }
        command = how.get(
            variant, f"ner_imbalance.inference.onnx_backend.quantize_int8({str(model_dir)!r}, {variant!r})"
        )
        raise FileNotFoundError(f"{path}: no such file; export it first: {command}")
    return path


def _onnxruntime(feature: str) -> Any:
    return import_extra("onnxruntime", extra=ONNX_EXTRA, feature=feature)


def export_onnx(model_dir: str | os.PathLike, *, int8: bool = False) -> list[Path]:
    """Write `model.onnx` (and with `int8` also the `DEFAULT_INT8` variant) into `model_dir`; returns the paths.

    Each file is written under a temporary name and renamed into place (`utils.atomic.atomic_path`),
    so an interrupted export leaves no half-written graph that `onnx_tagger` would load. The exporter
    resets torch's loggers: `logging` is left as it was (`utils.logging_state.logging_restored`).
    """
    _onnxruntime("ONNX export")
    import_extra("onnxscript", extra=ONNX_EXTRA, feature="ONNX export")
    folder = Path(model_dir)
    tokenizer = load_tokenizer(folder)
    model = AutoModelForTokenClassification.from_pretrained(folder).eval()
    names = [name for name in tokenizer.model_input_names if name in ("input_ids", "attention_mask", "token_type_ids")]
    sample = tokenizer(
        [["an", "example"], ["another", "longer", "example", "here"]],
        is_split_into_words=True,
        padding=True,
        return_tensors="pt",
    )
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    with logging_restored():
        program = torch.onnx.export(
            model,
            (),
            kwargs={name: sample[name] for name in names},
            input_names=names,
            output_names=["logits"],
            dynamic_shapes={name: {0: batch, 1: sequence} for name in names},
            opset_version=OPSET,
            dynamo=True,
            external_data=False,
            verbose=False,
        )
    with atomic_path(onnx_path(folder, FP32)) as temporary:
        program.save(str(temporary), external_data=False)
    written = [onnx_path(folder, FP32)]
    if int8:
        written.append(quantize_int8(folder, DEFAULT_INT8))
    return written


def quantize_int8(
    model_dir: str | os.PathLike, variant: str = DEFAULT_INT8, *, calibration: Sequence[Sequence[str]] | None = None
) -> Path:
    """Write the int8 `variant` (`INT8_RECIPES`) of the folder's `model.onnx`; returns its path.

    The fp32 graph first gets ONNX Runtime's transformer fusions (layer norm, GELU; opt level 1),
    then `quantize_dynamic` or, for a static recipe, `quantize_static` in QDQ format with activation
    ranges (min/max) from the windows of the first `CALIBRATION_SENTENCES` of `calibration` (lists of
    words, e.g. training sentences). Weights are int8 per output channel (per-tensor weights lost 2.4
    F1 on WNUT-17 dev, `docs/performance.md`); activations uint8. A static recipe without
    `calibration` is a `ValueError`, before anything is written. ONNX Runtime's quantisation logs through
    the root logger, which gives it a stderr handler where it has none: `logging` is left as it was.
    """
    if variant not in INT8_RECIPES:
        raise ValueError(f"int8 variant must be one of {', '.join(INT8_RECIPES)}, got {variant!r}")
    recipe = INT8_RECIPES[variant]
    if recipe.static and not calibration:
        raise ValueError(f"the int8 variant {variant!r} is calibrated: pass calibration= (sentences as lists of words)")
    _onnxruntime("int8 quantisation")
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static
    from onnxruntime.transformers.optimizer import optimize_model

    source = onnx_path(model_dir, FP32)
    if not source.is_file():
        raise FileNotFoundError(f"{source}: no such file; export the fp32 graph first")
    config = AutoConfig.from_pretrained(model_dir)
    excluded = nodes_of_parts(onnx.load(str(source)), recipe.keep_fp32)
    fused = optimize_model(
        str(source),
        model_type="bert",
        num_heads=getattr(config, "num_attention_heads", 0),
        hidden_size=getattr(config, "hidden_size", 0),
        opt_level=1,
    ).model
    settings: dict[str, Any] = dict(
        per_channel=True,
        weight_type=QuantType.QInt8,
        op_types_to_quantize=list(recipe.op_types) if recipe.op_types else None,
    )
    with atomic_path(onnx_path(model_dir, variant)) as temporary, logging_restored():
        if recipe.static:
            quantize_static(
                fused,
                temporary,
                _CalibrationWindows(model_dir, calibration[:CALIBRATION_SENTENCES], fused),
                quant_format=QuantFormat.QDQ,
                activation_type=QuantType.QUInt8,
                nodes_to_exclude=excluded + _matmuls_without_weight(fused),
                **settings,
            )
        else:
            quantize_dynamic(fused, temporary, nodes_to_exclude=excluded, **settings)
    return onnx_path(model_dir, variant)


_LAYER_SCOPE = re.compile(r"\.layer\.(\d+)$")


def nodes_of_parts(model: Any, parts: Sequence[str]) -> list[str]:
    """The names of the nodes of the exported fp32 `model` (an `onnx.ModelProto`) inside `parts` (`PARTS`).

    A node belongs to the modules its exporter records in `pkg.torch.onnx.name_scopes`: `embeddings`
    is a module named `embeddings`, `classifier` the head `classifier`, `first_layer` and
    `last_layer` the encoder layers `...layer.<i>` of the smallest and largest `i`. The fusions keep
    the names of the nodes quantisation acts on (MatMul, Gather), so the names hold for the fused
    graph. A part no node belongs to is a `ValueError`.
    """
    unknown = [part for part in parts if part not in PARTS]
    if unknown:
        raise ValueError(f"parts must be among {', '.join(PARTS)}, got {', '.join(unknown)}")
    scopes = {node.name: _name_scopes(node) for node in model.graph.node}
    layers = sorted(
        {int(match[1]) for names in scopes.values() for name in names if (match := _LAYER_SCOPE.search(name))}
    )
    tests = {
        "embeddings": lambda name: name.rsplit(".", 1)[-1] == "embeddings",
        "classifier": lambda name: name == "classifier",
        "first_layer": lambda name: bool(layers) and _layer_index(name) == layers[0],
        "last_layer": lambda name: bool(layers) and _layer_index(name) == layers[-1],
    }
    selected: list[str] = []
    for part in parts:
        nodes = [node for node, names in scopes.items() if any(tests[part](name) for name in names)]
        if not nodes:
            raise ValueError(f"no node of the exported graph belongs to the {part}")
        selected += [node for node in nodes if node not in selected]
    return selected


def _name_scopes(node: Any) -> list[str]:
    """The module names the exporter recorded for `node` (outermost first; empty if none)."""
    for prop in node.metadata_props:
        if prop.key == "pkg.torch.onnx.name_scopes":
            return [str(name) for name in ast.literal_eval(prop.value)]
    return []


def _layer_index(scope: str) -> int | None:
    match = _LAYER_SCOPE.search(scope)
    return int(match[1]) if match else None


def _matmuls_without_weight(model: Any) -> list[str]:
    """The MatMul nodes of `model` whose inputs are all activations (attention's scores and context):
    a static recipe leaves them fp32, as dynamic quantisation does."""
    weights = {initializer.name for initializer in model.graph.initializer}
    weights |= {output for node in model.graph.node if node.op_type == "Constant" for output in node.output}
    return [
        node.name
        for node in model.graph.node
        if node.op_type == "MatMul" and not any(name in weights for name in node.input)
    ]


class _CalibrationWindows:
    """The windows of `sentences`, one at a time as graph feeds, for `quantize_static`'s calibration
    (an `onnxruntime.quantization.CalibrationDataReader` by its `get_next`, which gives None at the end)."""

    def __init__(self, model_dir: str | os.PathLike, sentences: Sequence[Sequence[str]], model: Any) -> None:
        tokenizer = load_tokenizer(model_dir)
        windows = tagging_windows(sentences, tokenizer, AutoConfig.from_pretrained(model_dir).label2id).inputs
        names = [graph_input.name for graph_input in model.graph.input]
        self._feeds = iter([{name: np.asarray([row[name]], dtype=np.int64) for name in names} for row in windows])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._feeds, None)


class OnnxTokenClassifier:
    """An ONNX Runtime session in the place of a token-classification model, for `Tagger` (CPU, float32).

    Args:
        path: the `.onnx` file.
        config: the model folder's config (labels, decoding, tag scheme).
        threads: intra-op threads of the session (default: ONNX Runtime's, one per physical core).
    """

    def __init__(self, path: str | os.PathLike, config: PretrainedConfig, *, threads: int | None = None) -> None:
        onnxruntime = _onnxruntime("the ONNX backend")
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads is not None:
            options.intra_op_num_threads = threads
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_names = [node.name for node in self.session.get_inputs()]
        self.config = config

    def to(self, device: str | torch.device | None = None, dtype: torch.dtype | None = None) -> OnnxTokenClassifier:
        """Refuse anything but float32 on the CPU (the graph's), as `Tagger` asks for its device and dtype."""
        if device is not None and torch.device(device).type != "cpu":
            raise ValueError(f"the ONNX backend runs on the CPU, not {device}: use --device cpu or --backend torch")
        if dtype is not None and dtype != torch.float32:
            raise ValueError(f"the ONNX backend runs float32 graphs, not {dtype}: use --dtype float32 or auto")
        return self

    def eval(self) -> OnnxTokenClassifier:
        return self

    def __call__(self, **features: torch.Tensor) -> TokenClassifierOutput:
        """Logits `[batch, sequence, labels]` of a collated batch (the graph's inputs taken by name)."""
        feeds = {name: features[name].numpy().astype(np.int64, copy=False) for name in self.input_names}
        (logits,) = self.session.run(["logits"], feeds)
        return TokenClassifierOutput(logits=torch.from_numpy(logits))


def onnx_tagger(
    model_dir: str | os.PathLike, *, variant: str = "fp32", threads: int | None = None, **kwargs: Any
) -> Tagger:
    """A `Tagger` whose forward pass is the folder's exported ONNX graph `variant`; `kwargs` as `Tagger`."""
    path = exported_graph(model_dir, variant)
    tokenizer = load_tokenizer(model_dir)
    device = kwargs.pop("device", None) or "cpu"
    model = OnnxTokenClassifier(path, AutoConfig.from_pretrained(model_dir), threads=threads).to(device=device)
    return Tagger(model, tokenizer, device=device, **kwargs)  # type: ignore[arg-type]  # the model interface Tagger uses


DIFFERENCE_CHECK_SENTENCES = (
    ("Empire", "State", "Building", "in", "New", "York", "City", "!"),
    ("@user", "watching", "the", "new", "Star", "Wars", "with", "Anna", "tonight"),
    ("a",),
)
"""Sentences `largest_difference_from_torch` tags: multi-word entities, a handle, a one-letter sentence."""


def largest_difference_from_torch(
    model_dir: str | os.PathLike,
    variants: Sequence[str] = (FP32,),
    sentences: Sequence[Sequence[str]] = DIFFERENCE_CHECK_SENTENCES,
) -> dict[str, float]:
    """Variant -> `max |p_onnx - p_torch|` over every word probability of `sentences`, the torch model in
    float32 on CPU: how far each exported graph of the folder is from the model it was exported from."""
    words = [list(sentence) for sentence in sentences]
    reference = Tagger.from_folder(model_dir, device="cpu", dtype="float32").word_probabilities(words)
    return {
        variant: float(np.abs(onnx_tagger(model_dir, variant=variant).word_probabilities(words) - reference).max())
        for variant in variants
    }
