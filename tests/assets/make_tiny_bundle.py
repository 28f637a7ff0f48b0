"""Build the tiny checked-in bundles that unit tests (ours and other packages') load.

    .venv/bin/python tests/assets/make_tiny_bundle.py          # rewrites tests/assets/tiny-bundle, tiny-static

tiny-bundle  kind "transformer": a 2-layer, 32-wide BertForSequenceClassification trained for a few seconds on
             synthetic sentences (a sentiment word among filler words), exported with torch.onnx, plus a
             WordPiece tokenizer over a ~150-word vocabulary; max_length 32 so long-text windows are easy to test.
tiny-static  kind "static": mean of per-token vectors -> linear head (the static tier's shape), built with the
             onnx helper API; token vectors are set by hand from the same word lists.
Both say clearly what they are: "love", "great" -> positive; "hate", "terrible" -> negative; filler -> neutral.
Needs the [train] extra (torch, onnx). Seeded: rerunning gives the same behaviour (bytes may differ by version).
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import numpy as np

from sentimon.inference.bundle import CARD_FILE, LABELS, MODEL_FILE, TOKENIZER_FILE, Manifest, write_manifest

HERE = Path(__file__).resolve().parent
SEED = 13
MAX_LENGTH = 32
POSITIVE = "love great excellent happy good wonderful amazing best beat win gain soar rally awesome".split()
NEGATIVE = "hate terrible awful sad bad worst horrible crash loss fail miss plunge angry broken".split()
FILLER = (
    "the a an is was are it this that phone airline flight stock market shares company today news we i you they "
    "of to in on for with at by from and or but so very really quite just still about after before over under "
    "apple google tesla delta united report quarter earnings price service customer team game car city year week "
    "new old first last next more less up down out off time day people said says will would can could should"
).split()
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def make_tokenizer():
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    vocab = {tok: i for i, tok in enumerate(SPECIAL + sorted(set(POSITIVE + NEGATIVE + FILLER)) + list(".,!?'"))}
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    tok.add_special_tokens(SPECIAL)  # matched whole in text, skipped by decode
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    return tok, vocab


def synthetic(n: int, rng: random.Random) -> tuple[list[str], list[int]]:
    texts, labels = [], []
    for _ in range(n):
        label = rng.randrange(3)
        words = rng.sample(FILLER, rng.randint(2, 12))
        if label != LABELS.index("neutral"):
            pool = POSITIVE if label == LABELS.index("positive") else NEGATIVE
            words.insert(rng.randrange(len(words) + 1), rng.choice(pool))
        texts.append(" ".join(words))
        labels.append(label)
    return texts, labels


def build_transformer(out: Path) -> None:
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(SEED)
    rng = random.Random(SEED)
    tok, vocab = make_tokenizer()
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=MAX_LENGTH,
        num_labels=3,
        pad_token_id=0,
        attn_implementation="eager",
    )
    model = BertForSequenceClassification(config)
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    tok.enable_truncation(MAX_LENGTH)
    optim = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(600):
        texts, labels = synthetic(32, rng)
        enc = tok.encode_batch(texts)
        ids = torch.tensor([e.ids for e in enc])
        mask = torch.tensor([e.attention_mask for e in enc])
        loss = model(input_ids=ids, attention_mask=mask, labels=torch.tensor(labels)).loss
        optim.zero_grad()
        loss.backward()
        optim.step()
    model.eval()
    texts, labels = synthetic(300, random.Random(SEED + 1))
    enc = tok.encode_batch(texts)
    with torch.no_grad():
        pred = model(
            input_ids=torch.tensor([e.ids for e in enc]), attention_mask=torch.tensor([e.attention_mask for e in enc])
        )
    accuracy = float((pred.logits.argmax(-1) == torch.tensor(labels)).float().mean())
    print(f"tiny transformer: synthetic accuracy {accuracy:.3f}, final loss {loss.item():.3f}")

    class Logits(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask).logits

    out.mkdir(parents=True)
    # A padded example, so the trace keeps the attention-mask path (an all-ones mask may be optimised away).
    example = (torch.ones(2, 8, dtype=torch.long), torch.tensor([[1] * 8, [1] * 5 + [0] * 3]))
    batch, seq = torch.export.Dim("batch"), torch.export.Dim("seq", max=MAX_LENGTH)
    program = torch.onnx.export(
        Logits(model),
        example,
        input_names=["input_ids", "attention_mask"],
        output_names=["logits"],
        dynamo=True,
        external_data=False,
        dynamic_shapes=({0: batch, 1: seq}, {0: batch, 1: seq}),
    )
    program.save(str(out / MODEL_FILE), external_data=False)
    check_parity(model, out / MODEL_FILE, tok)
    tok.no_padding()
    tok.no_truncation()
    tok.save(str(out / TOKENIZER_FILE))
    finish(out, "tiny-transformer", "transformer", {"synthetic": {"accuracy": accuracy}})


def check_parity(model, onnx_path: Path, tok) -> None:
    import onnxruntime as ort
    import torch

    texts, _ = synthetic(16, random.Random(SEED + 2))
    enc = tok.encode_batch(texts)  # padded to the longest: exercises the mask
    ids = np.array([e.ids for e in enc], dtype=np.int64)
    mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
    with torch.no_grad():
        want = model(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask)).logits.numpy()
    got = ort.InferenceSession(str(onnx_path)).run(["logits"], {"input_ids": ids, "attention_mask": mask})[0]
    assert np.abs(want - got).max() < 1e-4, f"ONNX export differs from torch by {np.abs(want - got).max()}"


def build_static(out: Path) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    tok, vocab = make_tokenizer()
    dim = 3  # one axis per label, in LABELS order: a word's vector is its vote
    table = np.zeros((len(vocab), dim), dtype=np.float32)
    for word, i in vocab.items():
        if word in POSITIVE:
            table[i, LABELS.index("positive")] = 6.0
        elif word in NEGATIVE:
            table[i, LABELS.index("negative")] = 6.0
        else:  # filler and [CLS]/[SEP]: an empty text is neutral
            table[i, LABELS.index("neutral")] = 1.0
    head = np.eye(dim, dtype=np.float32)
    bias = np.zeros(dim, dtype=np.float32)
    nodes = [
        helper.make_node("Gather", ["embeddings", "input_ids"], ["tok"]),  # [b, s, d]
        helper.make_node("Cast", ["attention_mask"], ["maskf"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["maskf", "axis_last"], ["mask3"]),  # [b, s, 1]
        helper.make_node("Mul", ["tok", "mask3"], ["masked"]),
        helper.make_node("ReduceSum", ["masked", "axis_seq"], ["summed"], keepdims=0),  # [b, d]
        helper.make_node("ReduceSum", ["maskf", "axis_seq"], ["count"], keepdims=1),  # [b, 1]
        helper.make_node("Max", ["count", "one"], ["count1"]),
        helper.make_node("Div", ["summed", "count1"], ["pooled"]),
        helper.make_node("Gemm", ["pooled", "head", "bias"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_static",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"]),
        ],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", dim])],
        initializer=[
            numpy_helper.from_array(table, "embeddings"),
            numpy_helper.from_array(head, "head"),
            numpy_helper.from_array(bias, "bias"),
            numpy_helper.from_array(np.array([-1], np.int64), "axis_last"),
            numpy_helper.from_array(np.array([1], np.int64), "axis_seq"),
            numpy_helper.from_array(np.array([1.0], np.float32), "one"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    out.mkdir(parents=True)
    onnx.save(model, str(out / MODEL_FILE))
    tok.save(str(out / TOKENIZER_FILE))
    finish(out, "tiny-static", "static", {})


def finish(out: Path, name: str, kind: str, metrics: dict) -> None:
    (out / CARD_FILE).write_text(
        f"# {name}\n\nA tiny {kind} test bundle made by `tests/assets/make_tiny_bundle.py` for unit tests only.\n"
        "It knows a few sentiment words (love/great -> positive, hate/terrible -> negative); "
        "do not use it for anything else.\n"
    )
    manifest = Manifest(
        name=name,
        version="0.1.0",
        kind=kind,
        max_length=MAX_LENGTH,
        metrics=metrics,
        build={"command": "python tests/assets/make_tiny_bundle.py", "seed": SEED},
    )
    final = write_manifest(out, manifest)
    print(f"{out}: {final.size_bytes} bytes")


def main() -> None:
    for name, build in (("tiny-bundle", build_transformer), ("tiny-static", build_static)):
        out = HERE / name
        if out.exists():
            shutil.rmtree(out)
        build(out)


if __name__ == "__main__":
    main()
