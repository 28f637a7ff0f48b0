"""The registry against real databases (SQLite, and the test stack's PostgreSQL and Redis): versions, aliases,
history, the Redis mirror, and ``inference.load`` of references."""

from __future__ import annotations

import json
import shutil
import time

import pytest

from sentimon import inference
from sentimon.core.host import free_port
from sentimon.core.parts import InferenceSettings
from sentimon.inference.bundle import BundleError
from sentimon.inference.registry import Registry, RegistryError, content_version
from tests.inference.conftest import TINY, TINY_STATIC


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def database(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'registry.db'}"
    return request.getfixturevalue("stack_settings").stack.database


@pytest.fixture
def registry(database, tmp_path):
    reg = Registry(tmp_path / "registry", database)
    yield reg
    reg.close()


@pytest.fixture
def name(unique) -> str:
    return unique[:60]  # the test PostgreSQL is shared by the session: each test its own model name


def _altered(tmp_path, source=TINY, tag="b"):
    """A copy of a bundle with a different model card: same model, another content version."""
    dst = tmp_path / f"bundle-{tag}"
    shutil.copytree(source, dst)
    (dst / "README.md").write_text(f"variant {tag}\n")
    return dst


def test_register_copies_once_into_a_read_only_content_version(registry, name, tmp_path):
    first = registry.register(TINY, name, why="first build")
    assert first.new and first.ref.version == content_version(TINY)
    assert str(first.ref) == f"{name}@{first.ref.version}"
    assert content_version(first.path) == first.ref.version
    assert all(not (p.stat().st_mode & 0o222) for p in first.path.iterdir())
    inode = (first.path / "model.onnx").stat().st_ino
    again = registry.register(TINY, name, why="same bytes again")
    assert not again.new and again.ref == first.ref
    assert (first.path / "model.onnx").stat().st_ino == inode
    events = registry.history(name)
    assert [(e["action"], e["version"], e["why"]) for e in events] == [("register", first.ref.version, "first build")]
    assert "@" in events[0]["who"] and events[0]["at"].endswith("Z")


def test_register_refuses_what_is_not_a_valid_bundle(registry, name, tmp_path):
    with pytest.raises(BundleError, match="not a sentimon model bundle"):
        registry.register(tmp_path, name)
    corrupt = _altered(tmp_path)
    (corrupt / "model.onnx").write_bytes((corrupt / "model.onnx").read_bytes()[:-1] + b"\0")
    with pytest.raises(BundleError, match="does not match the sha256"):
        registry.register(corrupt, name)
    with pytest.raises(RegistryError, match="not usable in a reference"):
        registry.register(TINY, "no spaces please")
    assert registry.history(name) == [] and not (registry.root / name).exists()


def test_promote_rollback_and_history_in_order(registry, name, tmp_path):
    a = registry.register(TINY, name).ref
    b = registry.register(_altered(tmp_path, tag="b"), name).ref
    c = registry.register(_altered(tmp_path, tag="c"), name).ref
    assert registry.promote(a, why="initial").changed
    assert registry.promote(b).previous == a.version
    assert not registry.promote(b).changed  # already champion: nothing recorded
    registry.promote(c, alias="candidate")
    change = registry.promote(f"{name}@candidate", why="canary passed")
    assert (change.version, change.previous) == (c.version, b.version)
    assert registry.aliases(name) == {"champion": c.version}  # the promoted candidate is no longer a candidate
    assert registry.rollback(name, why="bad numbers").version == b.version
    assert registry.rollback(name).version == a.version
    with pytest.raises(RegistryError, match="no previous champion"):
        registry.rollback(name)
    assert registry.version_of(f"{name}@champion") == a
    steps = [(e["action"], e["alias"], e["version"], e["previous"]) for e in registry.history(name)]
    assert steps == [
        ("register", None, a.version, None), ("register", None, b.version, None), ("register", None, c.version, None),
        ("promote", "champion", a.version, None), ("promote", "champion", b.version, a.version),
        ("promote", "candidate", c.version, None), ("promote", "champion", c.version, b.version),
        ("clear", "candidate", None, c.version), ("rollback", "champion", b.version, c.version),
        ("rollback", "champion", a.version, b.version),
    ]  # fmt: skip
    assert [e["action"] for e in registry.history(name, limit=2)] == ["rollback", "rollback"]
    rows = {v["version"]: v["aliases"] for v in registry.versions(name)}
    assert rows == {a.version: ["champion"], b.version: [], c.version: []}


def test_unknown_name_version_and_alias_each_say_what_exists(registry, name):
    ref = registry.register(TINY, name).ref
    with pytest.raises(RegistryError, match=rf"no model named 'nope' in the registry \(registered: .*{name}"):
        registry.promote("nope@0123456789ab")
    with pytest.raises(RegistryError, match=rf"{name}@0123456789ab is not registered \(versions of {name}: "):
        registry.promote(f"{name}@0123456789ab")
    with pytest.raises(RegistryError, match=f"{name} has no champion; set it with `sentimon models promote"):
        registry.path_of(f"{name}@champion")
    with pytest.raises(RegistryError, match="no champion to roll back"):
        registry.rollback(name)
    with pytest.raises(RegistryError, match="unknown alias 'stable'"):
        registry.promote(ref, alias="stable")


def test_a_bad_url_or_alias_to_clear_is_refused_before_any_work(registry, tmp_path):
    with pytest.raises(RegistryError, match="'not a url' is not a SQLAlchemy URL"):
        Registry(tmp_path / "r", "not a url")
    with pytest.raises(RegistryError, match="directory .* does not exist"):
        Registry(tmp_path / "r", f"sqlite:///{tmp_path / 'missing' / 'r.db'}")
    with pytest.raises(RegistryError, match="only the candidate can be cleared"):
        registry.clear("m", "champion")


def test_unreachable_database_is_one_clear_error(tmp_path):
    registry = Registry(tmp_path / "r", f"postgresql://sentimon@127.0.0.1:{free_port()}/sentimon", connect_timeout_s=1)
    with pytest.raises(RegistryError, match="cannot reach the model registry database at postgresql") as err:
        registry.register(TINY, "m")
    assert "sentimon up" in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "r").exists()  # nothing copied without a record


def test_load_resolves_versions_from_disk_and_aliases_through_the_database(registry, name, tmp_path):
    tiny = registry.register(TINY, name).ref
    static = registry.register(TINY_STATIC, name).ref
    registry.promote(static)
    opts = InferenceSettings(threads=1, registry_dir=registry.root, registry_database=registry.url, languages=[])
    texts = ["great results, shares up", "terrible quarter"]
    expected = inference.load(TINY_STATIC, opts).score(texts)
    assert inference.load(f"{name}@champion", opts).score(texts) == expected
    assert inference.load(str(static), opts.model_copy(update={"registry_database": None})).score(texts) == expected
    assert inference.load(str(tiny), opts).score(texts) == inference.load(TINY, opts).score(texts)
    with pytest.raises(RegistryError, match="SENTIMON_INFERENCE__REGISTRY_DATABASE"):
        inference.load(f"{name}@champion", opts.model_copy(update={"registry_database": None}))
    with pytest.raises(RegistryError, match=f"{name}@0123456789ab is not registered in .*versions of {name} there"):
        inference.load(f"{name}@0123456789ab", opts)


@pytest.mark.integration
def test_alias_changes_are_mirrored_to_redis_with_a_notification(stack_settings, name, tmp_path, unique):
    from sentimon.infra.redis_client import connect

    redis = connect(stack_settings.stack)
    registry = Registry(tmp_path / "r", stack_settings.stack.database, redis, prefix=unique)
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(registry.channel)
    try:
        a = registry.register(TINY, name).ref
        b = registry.register(TINY_STATIC, name).ref
        registry.promote(a)
        registry.promote(b)
        registry.rollback(name, why="drill")
        assert redis.get(registry.pointer_key(name, "champion")) == a.version.encode()
        registry.promote(b, alias="candidate")
        registry.clear(name, "candidate")
        assert redis.get(registry.pointer_key(name, "candidate")) is None
        notes = []
        deadline = time.monotonic() + 10
        while len(notes) < 5 and time.monotonic() < deadline:
            message = pubsub.get_message(timeout=1.0)
            if message:
                notes.append(json.loads(message["data"]))
        assert [(n["action"], n["alias"], n["version"], n["previous"]) for n in notes] == [
            ("promote", "champion", a.version, None), ("promote", "champion", b.version, a.version),
            ("rollback", "champion", a.version, b.version), ("promote", "candidate", b.version, None),
            ("clear", "candidate", None, b.version),
        ]  # fmt: skip
    finally:
        pubsub.close()
        registry.close()


@pytest.mark.integration
def test_redis_down_keeps_the_database_change_and_says_how_to_mirror_it(stack_settings, name, tmp_path, unique):
    from sentimon.infra.redis_client import connect

    dead = stack_settings.stack.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    down = Registry(tmp_path / "r", stack_settings.stack.database, connect(dead), prefix=unique)
    ref = down.register(TINY, name).ref
    with pytest.raises(RegistryError, match=f"run `sentimon models promote {ref}` again"):
        down.promote(ref)
    assert down.aliases(name) == {"champion": ref.version}  # the source of truth has it
    redis = connect(stack_settings.stack)
    up = Registry(tmp_path / "r", stack_settings.stack.database, redis, prefix=unique)
    assert not up.promote(ref).changed  # the rerun records nothing new, only mirrors
    assert redis.get(up.pointer_key(name, "champion")) == ref.version.encode()
    assert [e["action"] for e in up.history(name)] == ["register", "promote"]
