from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from sentimon import inference
from sentimon.core.settings import InferenceSettings, load_settings

ASSETS = Path(__file__).resolve().parents[1] / "assets"
TINY = ASSETS / "tiny-bundle"
TINY_STATIC = ASSETS / "tiny-static"


@pytest.fixture
def settings(tmp_path):
    """Settings whose models_dir is an empty temp dir (tests copy bundles in by name)."""
    models = tmp_path / "models"
    models.mkdir()
    return load_settings(models_dir=models, inference_threads=1)


@pytest.fixture
def bundle_copy(tmp_path):
    """A writable copy of the tiny transformer bundle, for corrupting."""
    dst = tmp_path / "bundle"
    shutil.copytree(TINY, dst)
    return dst


@pytest.fixture(scope="session")
def tiny():
    return inference.load(TINY, InferenceSettings(threads=1))


@pytest.fixture(scope="session")
def tiny_static():
    return inference.load(TINY_STATIC, InferenceSettings(threads=1))
