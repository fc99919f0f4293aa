"""The ONNX Runtime backend of the `Tagger`: export a model folder to ONNX (fp32, optionally int8), tag with it.

    from ner_imbalance.inference.onnx_backend import export_onnx, onnx_tagger
    export_onnx("runs/wnut17_focal", int8=True)          # writes model.onnx and model.int8.onnx there
    tagger = onnx_tagger("runs/wnut17_focal", variant="int8")
    tagger.tag([["Empire", "State", "Building"]])

The export is `torch.onnx.export` of the folder's token-classification model (dynamic batch and
sequence axes); int8 is `onnxruntime.quantization.quantize_dynamic` of that graph after ONNX
Runtime's transformer fusions (int8 weights per output channel, activations quantised per batch).
The calibration bias of `train_ner.py` is already folded into the saved classifier bias, so the
graph carries it.

`OnnxTokenClassifier` offers exactly what `Tagger` uses of a model (`config`, `to`, `eval`, and a
call on the collated batch that returns `.logits`), so an ONNX tagger runs the same windows, word
choice, length-grouped batches, decoding and entity chunking as the torch one: only the forward
pass differs. Needs `pip install 'ner_imbalance[onnx]'` (onnxruntime, onnx, onnxscript).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import AutoConfig, AutoModelForTokenClassification, PretrainedConfig
from transformers.modeling_outputs import TokenClassifierOutput

from ner_imbalance.inference.tagger import Tagger, load_tokenizer
from ner_imbalance.utils.extras import import_extra

ONNX_EXTRA = "onnx"
ONNX_FILES = {"fp32": "model.onnx", "int8": "model.int8.onnx"}
"""The ONNX variants and their file names in the model folder."""
ONNX_VARIANTS = tuple(ONNX_FILES)
OPSET = 18


def onnx_path(model_dir: str | os.PathLike, variant: str = "fp32") -> Path:
    """Where `export_onnx` writes (and `onnx_tagger` reads) `variant` in `model_dir`."""
    if variant not in ONNX_FILES:
        raise ValueError(f"ONNX variant must be one of {', '.join(ONNX_VARIANTS)}, got {variant!r}")
    return Path(model_dir) / ONNX_FILES[variant]


def exported_graph(model_dir: str | os.PathLike, variant: str = "fp32") -> Path:
    """`onnx_path(model_dir, variant)`; a `FileNotFoundError` saying how to export it when it is not there."""
    path = onnx_path(model_dir, variant)
    if not path.is_file():
        flag = " --int8" if variant == "int8" else ""
        raise FileNotFoundError(f"{path}: no such file; export it first: ner-export-onnx --model {model_dir}{flag}")
    return path


def _onnxruntime(feature: str) -> Any:
    return import_extra("onnxruntime", extra=ONNX_EXTRA, feature=feature)


def export_onnx(model_dir: str | os.PathLike, *, int8: bool = False) -> list[Path]:
    """Write `model.onnx` (and with `int8` also `model.int8.onnx`) into `model_dir`; returns the paths.

    Each file is written under a temporary name and renamed into place, so an interrupted export
    leaves no half-written graph that `onnx_tagger` would load.
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
    fp32 = onnx_path(folder, "fp32")
    temporary = fp32.with_name(f".{fp32.name}.{os.getpid()}.tmp")
    try:
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
        program.save(str(temporary), external_data=False)
        os.replace(temporary, fp32)
    finally:
        temporary.unlink(missing_ok=True)
    written = [fp32]
    if int8:
        written.append(quantize_int8(folder))
    return written


def quantize_int8(model_dir: str | os.PathLike) -> Path:
    """`model.int8.onnx` from the folder's `model.onnx`: ONNX Runtime's transformer fusions (attention,
    layer norm, GELU), then dynamic quantisation with int8 weights per output channel.

    Per-channel weights keep WNUT-17 dev F1 within 0.3 points of fp32 where per-tensor weights
    lose 2.4 (`docs/performance.md`); the fusions let the attention be quantised as one operator.
    """
    _onnxruntime("int8 quantisation")
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model

    source, target = onnx_path(model_dir, "fp32"), onnx_path(model_dir, "int8")
    if not source.is_file():
        raise FileNotFoundError(f"{source}: no such file; export the fp32 graph first")
    config = AutoConfig.from_pretrained(model_dir)
    fused = target.with_name(f".{target.name}.{os.getpid()}.fused.tmp")
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        optimize_model(
            str(source),
            model_type="bert",
            num_heads=getattr(config, "num_attention_heads", 0),
            hidden_size=getattr(config, "hidden_size", 0),
            opt_level=1,
        ).save_model_to_file(str(fused))
        quantize_dynamic(fused, temporary, weight_type=QuantType.QInt8, per_channel=True)
        os.replace(temporary, target)
    finally:
        fused.unlink(missing_ok=True)
        temporary.unlink(missing_ok=True)
    return target


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
    tokenizer = load_tokenizer(model_dir)
    path = exported_graph(model_dir, variant)
    device = kwargs.pop("device", None) or "cpu"
    model = OnnxTokenClassifier(path, AutoConfig.from_pretrained(model_dir), threads=threads).to(device=device)
    return Tagger(model, tokenizer, device=device, **kwargs)  # type: ignore[arg-type]  # the model interface Tagger uses
