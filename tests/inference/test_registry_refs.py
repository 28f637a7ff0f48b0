"""The registry's pure parts: references, content versions, the champion line rollback walks back along."""

from __future__ import annotations

import shutil

import pytest

from sentimon.inference.registry.refs import (
    AliasEvent,
    Ref,
    RegistryError,
    champion_line,
    content_version,
    is_ref,
    parse_ref,
    rollback_target,
    who,
)
from tests.inference.conftest import TINY


@pytest.mark.parametrize(
    ("text", "ref"),
    [("default@champion", Ref("default", alias="champion")),
     ("my.model-2@candidate", Ref("my.model-2", alias="candidate")),
     ("default@0123456789ab", Ref("default", version="0123456789ab"))],
)  # fmt: skip
def test_parse_ref(text, ref):
    assert is_ref(text)
    assert parse_ref(text) == ref
    assert str(ref) == text


@pytest.mark.parametrize("text", ["default", "models/default", "./x@champion", "@champion", "a@", "a@b@c"])
def test_paths_and_names_are_not_refs(text):
    assert not is_ref(text)
    with pytest.raises(RegistryError, match="NAME@VERSION"):
        parse_ref(text)


@pytest.mark.parametrize("target", ["latest", "0123", "0123456789AB", "0123456789abc"])
def test_a_target_that_is_neither_alias_nor_version_names_both(target):
    with pytest.raises(RegistryError, match=r"neither an alias \(champion, candidate\) nor a version"):
        parse_ref(f"default@{target}")


def test_content_version_follows_content_not_place(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(TINY, a)
    shutil.copytree(TINY, b)
    (b / ".DS_Store").write_text("editor dropping")  # hidden files are not part of a model
    version = content_version(a)
    assert len(version) == 12 and int(version, 16) >= 0
    assert content_version(b) == version
    (b / "README.md").write_text((b / "README.md").read_text() + "one more line\n")
    assert content_version(b) != version
    (b / "README.md").rename(b / "CARD.md")  # same bytes, another name: another bundle
    shutil.copyfile(a / "README.md", b / "CARD.md")
    assert content_version(b) != version


def _events(*steps: str) -> list[AliasEvent]:
    out = []
    for step in steps:
        action, _, version = step.partition(" ")
        out.append(AliasEvent(action, version or None))
    return out


def test_champion_line_promotions_and_rollbacks_in_order():
    assert champion_line([]) == []
    assert champion_line(_events("promote A", "promote B", "promote C")) == ["A", "B", "C"]
    # Promoting the champion again changes nothing; a rollback drops the current one.
    assert champion_line(_events("promote A", "promote A", "promote B", "rollback A")) == ["A"]
    assert champion_line(_events("promote A", "promote B", "rollback A", "promote C")) == ["A", "C"]


def test_rollback_walks_back_one_step_each_time():
    history = _events("promote A", "promote B", "promote C")
    assert rollback_target("m", history) == ("C", "B")
    history += _events("rollback B")
    assert rollback_target("m", history) == ("B", "A")
    history += _events("rollback A")
    with pytest.raises(RegistryError, match="m@A is the first champion of m: there is no previous champion"):
        rollback_target("m", history)


def test_rollback_without_champion_says_how_to_make_one():
    with pytest.raises(RegistryError, match="promote a version first: `sentimon models promote m@VERSION`"):
        rollback_target("m", [])


def test_who_is_user_at_host():
    user, _, host = who().partition("@")
    assert user and host
