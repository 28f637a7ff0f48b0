from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from sentimon.compression import CompressionError
from sentimon.compression.evaluate import load_candidate
from sentimon.compression.export import check_export, check_parity, export_onnx, optimize, parity, quantize_int8
from sentimon.compression.workspace import Workspace

from .models import SENTENCES, tiny_bert, tiny_static, tiny_tokenizer


def _workspace(tmp_path: Path) -> Workspace:
    """A build workspace with the teacher and export folders the tests fill (tokenizer, graphs)."""
    ws = Workspace(tmp_path)
    for stage in ("teacher", "export"):
        ws.stage_dir(stage).mkdir()
    return ws


def _runtime(ws: Workspace, candidate: str):
    return load_candidate(ws, candidate, 32, threads=1, max_batch=64)


def _io(path: Path):
    graph = onnx.load(str(path)).graph
    dims = {
        v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
        for v in [*graph.input, *graph.output]
    }
    types = {v.name: v.type.tensor_type.elem_type for v in [*graph.input, *graph.output]}
    return graph, dims, types


def test_transformer_export_optimize_quantize(tmp_path: Path):
    ws = _workspace(tmp_path)
    _, tok = tiny_tokenizer(ws.stage_dir("teacher"))
    model = tiny_bert(tok.get_vocab_size())
    raw = export_onnx(model, ws.onnx("raw"), 17)
    graph, dims, types = _io(raw)
    assert [i.name for i in graph.input] == ["input_ids", "attention_mask"] and [o.name for o in graph.output] == [
        "logits"
    ]
    assert dims["input_ids"] == ["batch", "sequence"] and dims["logits"] == ["batch", 3]
    assert types["input_ids"] == onnx.TensorProto.INT64 and types["logits"] == onnx.TensorProto.FLOAT
    how = optimize(raw, ws.onnx("fp32"), 4, 32)
    assert "Attention=2" in how  # the BERT fusion recognised both layers
    fp32 = _runtime(ws, "fp32")
    assert check_export(model, fp32, SENTENCES, "tiny") < 1e-3
    quantize_int8(ws.onnx("fp32"), ws.onnx("int8"))
    ops = {n.op_type for n in onnx.load(str(ws.onnx("int8"))).graph.node}
    assert ops & {"DynamicQuantizeLinear", "MatMulInteger", "QAttention", "DynamicQuantizeMatMul"}
    q8 = _runtime(ws, "int8")
    probs = q8.score_probs(SENTENCES)
    assert probs.shape == (len(SENTENCES), 3) and np.allclose(probs.sum(1), 1, atol=1e-5)
    assert ws.onnx("int8").stat().st_size < ws.onnx("fp32").stat().st_size


def test_a_graph_the_fusion_rejects_is_optimized_by_ort_and_still_scores(tmp_path: Path, monkeypatch):
    import onnxruntime.transformers.optimizer as ort_optimizer

    def fail(*args, **kwargs):
        raise RuntimeError("unfusable")

    monkeypatch.setattr(ort_optimizer, "optimize_model", fail)
    ws = _workspace(tmp_path)
    _, tok = tiny_tokenizer(ws.stage_dir("teacher"))
    model = tiny_bert(tok.get_vocab_size())
    assert optimize(export_onnx(model, ws.onnx("raw"), 17), ws.onnx("fp32"), 4, 32) == "ort-basic"
    assert check_export(model, _runtime(ws, "fp32"), SENTENCES, "tiny") < 1e-3


def test_static_export_is_gather_mean_linear(tmp_path: Path):
    ws = _workspace(tmp_path)
    _, tok = tiny_tokenizer(ws.stage_dir("teacher"))
    model = tiny_static(tok.get_vocab_size())
    export_onnx(model, ws.onnx("static"), 17)
    graph, dims, _ = _io(ws.onnx("static"))
    ops = {n.op_type for n in graph.node}
    assert "Gather" in ops and "ReduceSum" in ops and not ops & {"Attention", "Softmax"}
    assert dims["input_ids"] == ["batch", "sequence"] and dims["logits"] == ["batch", 3]
    scorer = _runtime(ws, "static")
    check_export(model, scorer, SENTENCES, "static")
    # padding must not change a text's score: mean over the mask only
    alone = scorer.score_probs(["the airline is great"])
    padded = scorer.score_probs(["the airline is great", "wow " * 40])[:1]
    assert np.allclose(alone, padded, atol=1e-6)


def test_check_export_catches_a_graph_that_differs(tmp_path: Path):
    ws = _workspace(tmp_path)
    _, tok = tiny_tokenizer(ws.stage_dir("teacher"))
    model = tiny_static(tok.get_vocab_size())
    export_onnx(model, ws.onnx("static"), 17)
    model.head.bias.data[0] += 1.0  # the PyTorch model moved on; the exported graph did not
    with pytest.raises(CompressionError, match="differs from the PyTorch model"):
        check_export(model, _runtime(ws, "static"), SENTENCES, "static")


def test_parity_measures_agreement_and_drift():
    ref = np.array([[0.7, 0.2, 0.1], [0.1, 0.2, 0.7], [0.4, 0.35, 0.25], [0.2, 0.6, 0.2]])
    new = np.array([[0.68, 0.22, 0.1], [0.1, 0.25, 0.65], [0.3, 0.45, 0.25], [0.2, 0.6, 0.2]])
    p = parity(ref, new)
    assert p.label_agreement == 0.75 and p.n == 4
    assert p.max_prob_diff == pytest.approx(0.1) and p.mean_prob_diff == pytest.approx(np.abs(ref - new).mean())
    check_parity(p, min_label_agreement=0.75, max_prob_diff=0.1 + 1e-9, what="ok")  # at the thresholds: passes


def test_parity_check_fails_below_threshold():
    ref = np.eye(3)[[0, 1, 2, 2]]
    new = np.eye(3)[[0, 1, 2, 0]]
    with pytest.raises(CompressionError, match=r"label agreement 0.7500 < 0.98"):
        check_parity(parity(ref, new), 0.98, 1.0, "student_int8")
    with pytest.raises(CompressionError, match=r"max probability difference 1.0000 > 0.35"):
        check_parity(parity(ref, new), 0.5, 0.35, "student_int8")
    with pytest.raises(CompressionError, match="equal, non-empty"):
        parity(ref, new[:2])
