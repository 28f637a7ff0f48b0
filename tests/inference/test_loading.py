"""A missing or broken bundle gives one BundleError naming the file, never a library stack trace."""

from __future__ import annotations

import json
import shutil

import pytest

from sentimon import inference
from sentimon.core.errors import UserError
from sentimon.inference import BundleError, InferenceError
from sentimon.inference.bundle import MANIFEST_FILE, MODEL_FILE, TOKENIZER_FILE, read_manifest, write_manifest

from .conftest import TINY


def test_errors_are_user_errors():
    assert issubclass(BundleError, UserError) and issubclass(InferenceError, UserError)


def test_load_by_name_from_models_dir(settings):
    shutil.copytree(TINY, settings.inference.models_dir / "default")
    scorer = inference.load(settings=settings.inference)
    assert (scorer.name, scorer.kind) == ("tiny-transformer", "transformer")
    assert inference.available_models(settings.inference.models_dir) == ["vader", "default"]


def test_unknown_name_lists_what_exists(settings):
    shutil.copytree(TINY, settings.inference.models_dir / "static")
    with pytest.raises(BundleError, match=r"no model named 'default'.*models available: vader, static"):
        inference.load("default", settings.inference)


def test_missing_dir(settings, tmp_path):
    with pytest.raises(BundleError, match=str(tmp_path / "nowhere")):
        inference.load(tmp_path / "nowhere", settings.inference)


def test_not_a_bundle(settings, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(BundleError, match=rf"{tmp_path / 'empty' / MANIFEST_FILE} is missing"):
        inference.load(tmp_path / "empty", settings.inference)


@pytest.mark.parametrize("name", [MODEL_FILE, TOKENIZER_FILE])
def test_missing_file(settings, bundle_copy, name):
    (bundle_copy / name).unlink()
    with pytest.raises(BundleError, match=rf"{bundle_copy / name} is missing"):
        inference.load(bundle_copy, settings.inference)


def test_corrupt_manifest_json(settings, bundle_copy):
    (bundle_copy / MANIFEST_FILE).write_text("{not json")
    with pytest.raises(BundleError, match=rf"{bundle_copy / MANIFEST_FILE} is not valid JSON"):
        inference.load(bundle_copy, settings.inference)


def test_manifest_schema_violation(settings, bundle_copy):
    data = json.loads((bundle_copy / MANIFEST_FILE).read_text())
    del data["max_length"]
    data["kind"] = "rnn"
    (bundle_copy / MANIFEST_FILE).write_text(json.dumps(data))
    with pytest.raises(BundleError, match=r"invalid: .*kind.*max_length|invalid: .*max_length.*kind"):
        inference.load(bundle_copy, settings.inference)


def test_wrong_labels(settings, bundle_copy):
    data = json.loads((bundle_copy / MANIFEST_FILE).read_text())
    data["labels"] = ["negative", "positive", "mixed"]
    (bundle_copy / MANIFEST_FILE).write_text(json.dumps(data))
    with pytest.raises(BundleError, match=r"labels must be a permutation"):
        inference.load(bundle_copy, settings.inference)


def test_checksum_mismatch(settings, bundle_copy):
    with open(bundle_copy / MODEL_FILE, "ab") as f:
        f.write(b"\0")
    with pytest.raises(BundleError, match=rf"{bundle_copy / MODEL_FILE} does not match the sha256"):
        inference.load(bundle_copy, settings.inference)


def test_corrupt_model_with_fresh_checksums(settings, bundle_copy):
    # Checksums re-recorded over garbage: ORT's own error must still come out as one BundleError line.
    (bundle_copy / MODEL_FILE).write_bytes(b"this is not an onnx model")
    write_manifest(bundle_copy, read_manifest(bundle_copy, verify_files=False))
    with pytest.raises(BundleError, match=rf"{bundle_copy / MODEL_FILE} cannot be loaded by ONNX Runtime") as info:
        inference.load(bundle_copy, settings.inference)
    assert "\n" not in str(info.value) and info.value.__cause__ is None


def test_corrupt_tokenizer(settings, bundle_copy):
    (bundle_copy / TOKENIZER_FILE).write_text('{"version": "1.0", "model": 42}')
    write_manifest(bundle_copy, read_manifest(bundle_copy, verify_files=False))
    with pytest.raises(BundleError, match=rf"{bundle_copy / TOKENIZER_FILE} is not a valid HF tokenizers file"):
        inference.load(bundle_copy, settings.inference)


def test_manifest_inputs_must_match_the_graph(settings, bundle_copy):
    manifest = read_manifest(bundle_copy)
    write_manifest(
        bundle_copy, manifest.model_copy(update={"inputs": ["input_ids", "attention_mask", "token_type_ids"]})
    )
    with pytest.raises(BundleError, match=r"takes inputs \['attention_mask', 'input_ids'\] but manifest.json lists"):
        inference.load(bundle_copy, settings.inference)


def test_bad_options(settings):
    with pytest.raises(InferenceError, match="unknown scoring option"):
        inference.load("vader", settings.inference, batch=3)
    with pytest.raises(InferenceError, match="max_batch: Input should be greater than or equal to 1"):
        inference.load(TINY, settings.inference, max_batch=0)
    with pytest.raises(InferenceError, match="not available"):
        inference.load(TINY, settings.inference, providers="NoSuchExecutionProvider")


def test_tokenizer_that_does_not_fit_the_model(settings, tmp_path):
    # Token ids beyond the model's embedding table: caught on load, not as an ORT trace on the first real text.
    from tokenizers import Tokenizer

    from .conftest import TINY_STATIC

    bundle = tmp_path / "mismatch"
    shutil.copytree(TINY_STATIC, bundle)
    tok = Tokenizer.from_file(str(bundle / TOKENIZER_FILE))
    tok.add_tokens([f"extra{i}" for i in range(500)])
    tok.save(str(bundle / TOKENIZER_FILE))
    write_manifest(bundle, read_manifest(bundle, verify_files=False))
    with pytest.raises(BundleError, match=r"model.onnx failed on a batch .*belong together") as info:
        inference.load(bundle, settings.inference)
    assert "\n" not in str(info.value)
