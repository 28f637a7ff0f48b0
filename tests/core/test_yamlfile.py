"""YAML files users write: errors name file, line and column."""

from __future__ import annotations

import pytest

from sentimon.core.yamlfile import YamlFileError, load_yaml


def test_syntax_error_names_file_line_and_column(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text("name: x\nrules:\n  - name: a\n    kind: level\n   bad: [\n")
    with pytest.raises(YamlFileError, match=rf"^{path}:5:4: rule file is not valid YAML: expected <block end>"):
        load_yaml(path, "rule file")


def test_missing_and_binary_files(tmp_path):
    with pytest.raises(YamlFileError, match="watchlist .*nope.yaml does not exist"):
        load_yaml(tmp_path / "nope.yaml", "watchlist")
    binary = tmp_path / "b.yaml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(YamlFileError, match="is not UTF-8 text"):
        load_yaml(binary)


def test_valid_file_loads(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text("AAPL: [Apple]\n")
    assert load_yaml(path) == {"AAPL": ["Apple"]}
