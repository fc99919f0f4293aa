"""The int8 variants of the ONNX export: each is written whole, leaves its fp32 parts in fp32, and tags
close to torch; the parts are found by module name; a calibrated variant needs its sentences.

A tiny random 2-layer BERT (`tiny_models`), exported once per module. Needs the `onnx` extra, like
`tests/test_onnx.py`: skipped with the reason where it is missing, a failure under CI.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tiny_models import require_onnx_extra, save_tiny_tagger, umask

from ner_imbalance.inference import Tagger
from ner_imbalance.inference.onnx_backend import (
    INT8_RECIPES,
    export_onnx,
    nodes_of_parts,
    onnx_path,
    onnx_tagger,
    quantize_int8,
)

LABELS = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
SENTENCES = [["john", "visited", "paris", "and", "london", "today"] * 3, ["mary"], ["the", "city", "with", "mary"]]
CALIBRATION = SENTENCES * 5

require_onnx_extra()

import onnx  # noqa: E402  (after the skip: part of the onnx extra)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A random BertForTokenClassification saved as ner-train saves it, its fp32 graph and every int8 variant."""

    folder = save_tiny_tagger(tmp_path_factory.mktemp("onnx_variants"), LABELS, seed=3)
    with umask(0o022):
        export_onnx(folder)
        for variant in INT8_RECIPES:
            quantize_int8(folder, variant, calibration=CALIBRATION)
    return folder


def operators(model_dir: Path, variant: str) -> dict[str, str]:
    """Node name -> operator type of the graph `variant`."""
    return {node.name: node.op_type for node in onnx.load(str(onnx_path(model_dir, variant))).graph.node}


def fp32_graph(model_dir: Path) -> onnx.ModelProto:
    return onnx.load(str(onnx_path(model_dir, "fp32")))


def test_every_variant_is_written_whole_with_a_plain_files_mode(model_dir):
    names = sorted(path.name for path in model_dir.iterdir())
    assert {f"model.{variant}.onnx" for variant in INT8_RECIPES} <= set(names)
    assert not [name for name in names if name.endswith(".tmp")]
    for variant in INT8_RECIPES:
        assert onnx_path(model_dir, variant).stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize("variant", list(INT8_RECIPES))
def test_every_variant_tags_close_to_torch(model_dir, variant):
    reference = Tagger.from_folder(model_dir, device="cpu").word_probabilities(SENTENCES)
    probabilities = onnx_tagger(model_dir, variant=variant).word_probabilities(SENTENCES)
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, rtol=1e-5)
    assert np.abs(probabilities - reference).max() < 0.05


def test_parts_are_found_by_module_name(model_dir):
    graph = fp32_graph(model_dir)
    classifier = nodes_of_parts(graph, ["classifier"])
    logits_producer = next(node for node in graph.graph.node if "logits" in node.output)
    assert logits_producer.name in classifier
    assert {node.op_type for node in graph.graph.node if node.name in classifier} == {"MatMul", "Add"}
    embeddings = {node.op_type for node in graph.graph.node if node.name in nodes_of_parts(graph, ["embeddings"])}
    assert "Gather" in embeddings and "MatMul" not in embeddings
    first, last = set(nodes_of_parts(graph, ["first_layer"])), set(nodes_of_parts(graph, ["last_layer"]))
    weights_in = {node.name: node for node in graph.graph.node if node.op_type == "MatMul"}
    assert first and last and not first & last
    # a BERT layer: 6 MatMuls with a weight (query, key, value, attention output, intermediate, output), 2 of attention
    assert (
        len([name for name in first if name in weights_in]) == len([name for name in last if name in weights_in]) == 8
    )
    assert set(nodes_of_parts(graph, ["classifier", "first_layer"])) == set(classifier) | first


def test_an_unknown_part_or_a_part_of_no_node_is_refused(model_dir):
    graph = fp32_graph(model_dir)
    with pytest.raises(ValueError, match="parts must be among"):
        nodes_of_parts(graph, ["pooler"])
    for node in graph.graph.node:
        del node.metadata_props[:]
    with pytest.raises(ValueError, match="no node of the exported graph belongs to the classifier"):
        nodes_of_parts(graph, ["classifier"])


def test_the_kept_parts_stay_fp32(model_dir):
    graph = fp32_graph(model_dir)
    (classifier_matmul,) = [name for name in nodes_of_parts(graph, ["classifier"]) if name.startswith("node_MatMul")]
    everything = operators(model_dir, "int8")
    assert f"{classifier_matmul}_quant" in everything and classifier_matmul not in everything
    assert operators(model_dir, "int8-fp32-classifier")[classifier_matmul] == "MatMul"
    assert operators(model_dir, "int8-matmul-fp32-classifier")[classifier_matmul] == "MatMul"
    ends = operators(model_dir, "int8-fp32-ends")  # 2 layers: first and last are all of them
    assert "MatMulInteger" not in ends.values()


def test_embedding_tables_are_quantised_only_where_gather_is(model_dir):
    def word_embeddings(variant: str) -> dict[str, int]:
        graph = onnx.load(str(onnx_path(model_dir, variant))).graph
        return {tensor.name: tensor.data_type for tensor in graph.initializer if "word_embeddings" in tensor.name}

    assert word_embeddings("int8")["bert.embeddings.word_embeddings.weight_quantized"] == onnx.TensorProto.UINT8
    assert word_embeddings("int8-matmul") == {"bert.embeddings.word_embeddings.weight": onnx.TensorProto.FLOAT}


def test_static_variant_is_quantize_dequantize_and_leaves_attention_fp32(model_dir):
    graph = onnx.load(str(onnx_path(model_dir, "int8-static"))).graph
    dequantized = {output for node in graph.node if node.op_type == "DequantizeLinear" for output in node.output}
    matmuls = [node for node in graph.node if node.op_type == "MatMul"]
    with_weight = [node for node in matmuls if all(name in dequantized for name in node.input)]
    attention = [node for node in matmuls if not any(name in dequantized for name in node.input)]
    assert len(with_weight) == 2 * 6 + 1 and len(attention) == 2 * 2


def test_a_calibrated_variant_without_sentences_is_refused_before_writing(model_dir, tmp_path):
    folder = tmp_path / "copy"
    folder.mkdir()
    for path in model_dir.iterdir():
        if not path.name.startswith("model.int8"):
            (folder / path.name).write_bytes(path.read_bytes())
    with pytest.raises(ValueError, match="calibrated: pass calibration="):
        quantize_int8(folder, "int8-static")
    with pytest.raises(ValueError, match="int8 variant must be one of"):
        quantize_int8(folder, "int4")
    assert not [path.name for path in folder.iterdir() if path.name.startswith("model.int8") or ".tmp" in path.name]


def test_a_failed_quantisation_leaves_no_file(model_dir, tmp_path, monkeypatch):
    import onnxruntime.quantization

    folder = tmp_path / "copy"
    folder.mkdir()
    for path in model_dir.iterdir():
        if not path.name.startswith("model.int8"):
            (folder / path.name).write_bytes(path.read_bytes())

    def crash(model, output, **settings):
        Path(output).write_bytes(b"half a graph")
        raise RuntimeError("killed while quantising")

    monkeypatch.setattr(onnxruntime.quantization, "quantize_dynamic", crash)
    with pytest.raises(RuntimeError, match="killed while quantising"):
        quantize_int8(folder, "int8")
    assert sorted(path.name for path in folder.iterdir()) == sorted(
        path.name for path in model_dir.iterdir() if not path.name.startswith("model.int8")
    )


def test_missing_variant_says_how_to_make_it(model_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"quantize_int8\(.*'int8-static'\)"):
        onnx_tagger(tmp_path, variant="int8-static")
