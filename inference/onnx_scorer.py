"""ONNX Runtime scorer for a bundle (transformer student or static tier: same I/O).

Three stages, as HF pipelines split them: tokenize (HF ``tokenizers``, windows for long texts), run (only
``session.run`` on length-sorted, per-batch padded arrays), postprocess (numpy softmax, label reorder, window
mean). ``InferenceSession.run`` and ``Tokenizer.encode_batch`` are safe to call from many threads at once and
nothing here mutates after ``__init__``, so ``score`` needs no lock.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from sentimon.core.parts import InferenceSettings
from sentimon.inference.batching import aggregate_windows, padded_length, plan_batches, softmax
from sentimon.inference.bundle import LABELS, MODEL_FILE, TOKENIZER_FILE, BundleError, Manifest, read_manifest
from sentimon.inference.options import InferenceError
from sentimon.inference.prediction import Scorer, check_texts
from sentimon.inference.text import spell_emoji_all

log = logging.getLogger(__name__)

_GRAPH_LEVELS = {
    "disabled": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "all": "ORT_ENABLE_ALL",
}
_PAD_TOKENS = ("[PAD]", "<pad>", "<PAD>", "[pad]")


def choose_providers(spec: str) -> list[str]:
    import onnxruntime as ort

    available = ort.get_available_providers()
    if spec == "auto":
        return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
    wanted = [p.strip() for p in spec.split(",") if p.strip()]
    missing = [p for p in wanted if p not in available]
    if missing or not wanted:
        raise InferenceError(f"execution provider(s) {missing or spec!r} not available here; available: {available}")
    return wanted


class OnnxScorer(Scorer):
    def __init__(self, bundle_dir: Path, options: InferenceSettings | None = None) -> None:
        self.bundle_dir = Path(bundle_dir)
        self.options = options or InferenceSettings()
        self.manifest: Manifest = read_manifest(self.bundle_dir, verify_files=self.options.verify_files)
        self.name, self.version, self.kind = self.manifest.name, self.manifest.version, self.manifest.kind
        self.max_length = self.manifest.max_length
        self._tokenizer = self._load_tokenizer()
        # encode_batch_fast (tokenizers >= 0.20) skips character offsets, which scoring never reads: ~30% faster.
        self._encode_batch = getattr(self._tokenizer, "encode_batch_fast", self._tokenizer.encode_batch)
        self._session = self._load_session()
        self._want_types = "token_type_ids" in self.manifest.inputs
        # Model output columns -> LABELS order.
        self._reorder = [self.manifest.labels.index(label) for label in LABELS]
        self._check_runs()

    # --- loading -------------------------------------------------------------------------------------------
    def _load_tokenizer(self):
        from tokenizers import Tokenizer

        path = self.bundle_dir / TOKENIZER_FILE
        try:
            tok = Tokenizer.from_file(str(path))
        except Exception as exc:  # tokenizers raises a bare Exception on a malformed file
            raise BundleError(f"{path} is not a valid HF tokenizers file ({exc}); rebuild the bundle") from None
        tok.no_padding()
        special = tok.post_processor.num_special_tokens_to_add(False) if tok.post_processor else 0
        room = self.max_length - special
        if room < 1:
            raise BundleError(f"{self.bundle_dir / 'manifest.json'}: max_length {self.max_length} leaves no room")
        # tokenizers refuses a stride >= the content room; keep at least half of each window new.
        stride = min(self.options.window_stride, room // 2)
        tok.enable_truncation(self.max_length, stride=stride, strategy="longest_first", direction="right")
        pad = tok.padding["pad_id"] if tok.padding else None
        if pad is None:
            pad = next((tok.token_to_id(t) for t in _PAD_TOKENS if tok.token_to_id(t) is not None), 0)
        self._pad_id: int = int(pad or 0)
        return tok

    def _load_session(self):
        import onnxruntime as ort

        path = self.bundle_dir / MODEL_FILE
        so = ort.SessionOptions()
        so.intra_op_num_threads = self.options.threads
        if not self.options.spin_wait:
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = getattr(
            ort.GraphOptimizationLevel, _GRAPH_LEVELS[self.options.graph_optimization]
        )
        so.log_severity_level = 3  # ORT warnings about unused initializers are noise for users
        providers = choose_providers(self.options.providers)
        try:
            session = ort.InferenceSession(str(path), sess_options=so, providers=providers)
        except Exception as exc:  # ORT raises InvalidProtobuf / Fail / RuntimeException from its C++ core
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise BundleError(f"{path} cannot be loaded by ONNX Runtime ({first}); rebuild the bundle") from None
        inputs = {i.name for i in session.get_inputs()}
        if inputs != set(self.manifest.inputs):
            raise BundleError(
                f"{path} takes inputs {sorted(inputs)} but manifest.json lists {self.manifest.inputs}; "
                "rebuild the bundle"
            )
        if "logits" not in {o.name for o in session.get_outputs()}:
            raise BundleError(f"{path} has no output named 'logits'; rebuild the bundle")
        return session

    def _check_runs(self) -> None:
        try:
            # The tokenizer's highest id must be a valid row of the model's embedding table.
            top = self._tokenizer.get_vocab_size(with_added_tokens=True) - 1
            probs = self._run_sequences([[self._pad_id, top]], [[0, 0]])[:1]
        except BundleError:
            raise
        except Exception as exc:
            raise BundleError(
                f"{self.bundle_dir / MODEL_FILE} fails on a test input ({exc}); rebuild the bundle"
            ) from None
        if probs.shape != (1, len(LABELS)) or not np.isfinite(probs).all():
            raise BundleError(
                f"{self.bundle_dir / MODEL_FILE} returns logits of shape {probs.shape} (expected [batch, 3]) "
                "or non-finite values; rebuild the bundle"
            )

    # --- scoring -------------------------------------------------------------------------------------------
    def windows(self, texts: list[str]) -> tuple[list[list[int]], list[list[int]] | None, list[int]]:
        """Token ids, type ids (None when the model takes none) and owning text index of every window."""
        ids: list[list[int]] = []
        types: list[list[int]] | None = [] if self._want_types else None
        owners: list[int] = []
        full = self.max_length
        for i, enc in enumerate(self._encode_batch(spell_emoji_all(texts), add_special_tokens=True)):
            first = enc.ids
            # Reading .overflowing copies encodings out of Rust: only a window that hit max_length can have any.
            parts = (enc, *enc.overflowing) if len(first) >= full else (enc,)
            for k, part in enumerate(parts):
                # An empty text with a tokenizer that adds no special tokens: score the pad token alone.
                ids.append((first if k == 0 else part.ids) or [self._pad_id])
                if types is not None:
                    types.append(part.type_ids or [0])
                owners.append(i)
        return ids, types, owners

    def _run_sequences(self, ids: list[list[int]], types: list[list[int]] | None) -> np.ndarray:
        o = self.options
        lengths = [len(x) for x in ids]
        out = np.empty((len(ids), len(LABELS)), dtype=np.float64)
        for batch in plan_batches(lengths, o.max_batch, o.max_batch_tokens, o.pad_multiple, self.max_length):
            width = padded_length(max(lengths[i] for i in batch), o.pad_multiple, self.max_length)
            input_ids = np.full((len(batch), width), self._pad_id, dtype=np.int64)
            mask = np.zeros((len(batch), width), dtype=np.int64)
            type_ids = np.zeros((len(batch), width), dtype=np.int64) if self._want_types else None
            for row, i in enumerate(batch):
                n = lengths[i]
                input_ids[row, :n] = ids[i]
                mask[row, :n] = 1
                if type_ids is not None and types is not None:
                    type_ids[row, :n] = types[i]
            feed = {"input_ids": input_ids, "attention_mask": mask}
            if type_ids is not None:
                feed["token_type_ids"] = type_ids
            try:
                (logits,) = self._session.run(["logits"], feed)
            except Exception as exc:  # ORT's C++ errors: a model that cannot take this bundle's token ids
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                raise BundleError(
                    f"{self.bundle_dir / MODEL_FILE} failed on a batch of shape {list(input_ids.shape)} ({first}); "
                    f"do model.onnx and {TOKENIZER_FILE} belong together? Rebuild the bundle"
                ) from None
            if logits.ndim != 2 or logits.shape != (len(batch), len(LABELS)):
                raise BundleError(
                    f"{self.bundle_dir / MODEL_FILE} returns logits of shape {list(logits.shape)}, expected "
                    f"[{len(batch)}, {len(LABELS)}]; rebuild the bundle"
                )
            out[batch] = softmax(logits)[:, self._reorder]
        return out

    def score_probs(self, texts: list[str]) -> np.ndarray:
        texts = check_texts(texts)
        if not texts:
            return np.zeros((0, len(LABELS)))
        ids, types, owners = self.windows(texts)
        probs = self._run_sequences(ids, types)
        if len(ids) == len(texts):
            return probs
        return aggregate_windows(probs, owners, len(texts))
