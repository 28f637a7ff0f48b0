"""`sentimon models register | promote | rollback | history | list` as users run them: the reference on the last
line, tables and JSON on stdout, every mistake one line on stderr with exit status 2."""

from __future__ import annotations

import json
import os
import shutil
import sys

import pytest

from sentimon.cli import main
from sentimon.core.host import free_port
from sentimon.inference.registry import content_version
from tests.inference.conftest import TINY, TINY_STATIC


@pytest.fixture
def cli(monkeypatch, capsys, tmp_path):
    """Run `sentimon ARGS` in this process with the registry in tmp_path (SQLite unless ``env`` says otherwise);
    returns (exit status, stdout, stderr)."""
    for key in [k for k in os.environ if k.startswith("SENTIMON_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("SENTIMON_INFERENCE__REGISTRY_DIR", str(tmp_path / "registry"))
    monkeypatch.setenv("SENTIMON_STACK__DATABASE_URL", f"sqlite:///{tmp_path / 'registry.db'}")
    # Nothing listens here: commands that must not need Redis prove it, the others fail on it.
    monkeypatch.setenv("SENTIMON_STACK__REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")

    def run(*args: str, **env: str) -> tuple[int, str, str]:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        monkeypatch.setattr(sys, "argv", ["sentimon", *args])
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def _one_error_line(result: tuple[int, str, str], *phrases: str) -> None:
    code, out, err = result
    assert code == 2 and not out, err
    assert err.startswith("error:") and "Traceback" not in err
    flat = " ".join(err.split())  # rich wraps long lines at the terminal width
    for phrase in phrases:
        assert phrase in flat, flat


def test_register_prints_the_reference_last_and_again_the_same(cli, tmp_path):
    code, out, err = cli("models", "register", str(TINY), "--name", "tiny", "--why", "first build")
    version = content_version(TINY)
    assert code == 0, err
    assert out.splitlines()[-1] == f"tiny@{version}"
    assert "registered" in err and (tmp_path / "registry" / "tiny" / version / "model.onnx").is_file()
    code, out, err = cli("models", "register", str(TINY), "--name", "tiny")
    assert (code, out.splitlines()[-1]) == (0, f"tiny@{version}")
    assert "already registered" in err
    code, out, _ = cli("models", "history", "tiny", "--json")
    events = json.loads(out)
    assert [(e["action"], e["version"], e["why"]) for e in events] == [("register", version, "first build")]
    code, out, _ = cli("models", "list", "--json")
    rows = {r["name"]: r for r in json.loads(out)}
    assert {"vader", "cascade", "default", "finance", f"tiny@{version}"} <= set(rows)  # the catalogue rows stay
    assert rows[f"tiny@{version}"]["aliases"] == [] and rows[f"tiny@{version}"]["kind"] == "transformer"


def test_register_takes_the_manifest_name_by_default(cli):
    code, out, _ = cli("models", "register", str(TINY_STATIC))
    assert code == 0 and out.splitlines()[-1].startswith("tiny-static@")


def test_mistakes_are_one_line_with_status_2(cli, tmp_path):
    _one_error_line(cli("models", "register", str(tmp_path)), "not a sentimon model bundle")
    _one_error_line(cli("models", "register", str(tmp_path / "missing")), "is not a directory")
    _one_error_line(cli("models", "promote", "tiny@0123456789ab"), "no model named 'tiny' in the registry")
    _one_error_line(cli("models", "promote", "tiny@latest"), "neither an alias (champion, candidate) nor a version")
    _one_error_line(cli("models", "rollback"), "name the model to roll back: the registry is empty")
    ref = cli("models", "register", str(TINY), "--name", "tiny")[1].strip()
    _one_error_line(cli("models", "promote", ref.replace("@", "@0")[: len(ref)]), "is not registered")
    _one_error_line(cli("models", "show", "tiny@champion"), "tiny has no champion; set it with")
    _one_error_line(cli("models", "rollback", "tiny"), "no champion to roll back")
    # The alias is recorded, then mirroring to the (absent) Redis fails: the message names the rerun.
    _one_error_line(cli("models", "promote", ref), f"run `sentimon models promote {ref}` again")


def test_unreachable_database_is_one_line_with_status_2(cli, tmp_path):
    down = {"SENTIMON_STACK__DATABASE_URL": f"postgresql://sentimon@127.0.0.1:{free_port()}/sentimon"}
    _one_error_line(cli("models", "register", str(TINY), **down), "cannot reach the model registry database")
    _one_error_line(cli("models", "history", **down), "cannot reach the model registry database", "sentimon up")
    code, out, err = cli("models", "list", **down)  # an empty registry needs no database
    assert code == 0 and "default" in out, err


@pytest.mark.integration
def test_promote_list_rollback_on_postgresql_and_redis(cli, stack_settings, unique, tmp_path):
    from sentimon.infra.redis_client import connect

    env = {"SENTIMON_STACK__DATABASE_URL": stack_settings.stack.database, "SENTIMON_STACK__REDIS_URL":
           stack_settings.stack.redis, "SENTIMON_INFERENCE__REGISTRY_PREFIX": unique}  # fmt: skip
    name = unique[:60]
    variant = tmp_path / "variant"
    shutil.copytree(TINY, variant)
    (variant / "README.md").write_text("variant\n")
    first = cli("models", "register", str(TINY), "--name", name, **env)[1].splitlines()[-1]
    second = cli("models", "register", str(variant), "--name", name, **env)[1].splitlines()[-1]
    assert first != second
    assert cli("models", "promote", first, "--why", "baseline", **env)[:2] == (0, first + "\n")
    code, out, err = cli("models", "promote", second, **env)
    assert code == 0 and f"was {first}" in " ".join(err.split())
    rows = {r["name"]: r for r in json.loads(cli("models", "list", "--json", **env)[1])}
    assert rows[second]["aliases"] == ["champion"] and rows[first]["aliases"] == []
    code, out, err = cli("models", "rollback", name, "--why", "drill", **env)
    assert (code, out.strip()) == (0, first), err
    redis = connect(stack_settings.stack)
    assert redis.get(f"{unique}:{name}:champion") == first.split("@")[1].encode()
    events = json.loads(cli("models", "history", name, "--json", **env)[1])
    assert [(e["action"], e["version"], e["why"]) for e in events][-3:] == [
        ("promote", first.split("@")[1], "baseline"), ("promote", second.split("@")[1], ""),
        ("rollback", first.split("@")[1], "drill"),
    ]  # fmt: skip
    code, out, _ = cli("models", "history", name, **env)
    assert code == 0 and "rollback" in out and "drill" in out


def test_score_takes_a_registry_reference_for_model(cli, tmp_path):
    from sentimon.inference.registry import Registry

    database = f"sqlite:///{tmp_path / 'registry.db'}"
    registry = Registry(tmp_path / "registry", database)
    registry.promote(registry.register(TINY, "tiny").ref)  # no Redis given: nothing to mirror to
    registry.close()
    posts = tmp_path / "posts.txt"
    posts.write_text("great results, shares up\nterrible quarter\n")
    env = {"SENTIMON_INFERENCE__LANGUAGES": "[]", "SENTIMON_INFERENCE__THREADS": "1"}
    by_path = cli("score", "--model", str(TINY), "--input", str(posts), **env)
    code, out, err = cli("score", "--model", "tiny@champion", "--input", str(posts),
                         SENTIMON_INFERENCE__REGISTRY_DATABASE=database, **env)  # fmt: skip
    assert code == 0, err
    assert out == by_path[1] and len(out.splitlines()) == 2
    _one_error_line(cli("score", "--model", "tiny@candidate", "--input", str(posts)), "tiny has no candidate")
