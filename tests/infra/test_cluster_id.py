"""The KRaft cluster id handed to `kafka-storage format` must never look like an option."""

from __future__ import annotations

import uuid

from sentimon.infra import kafka_service


def test_cluster_id_never_starts_with_a_dash(monkeypatch) -> None:
    # 0xf8 as the first byte encodes to "-" in urlsafe base64: the id CI once drew.
    draws = iter([uuid.UUID(bytes=b"\xf8" + bytes(15)), uuid.UUID(bytes=b"\x10" + bytes(15))])
    monkeypatch.setattr(kafka_service.uuid, "uuid4", lambda: next(draws))
    cid = kafka_service.cluster_id()
    assert not cid.startswith("-")
    assert len(cid) == 22


def test_cluster_ids_are_random() -> None:
    assert len({kafka_service.cluster_id() for _ in range(200)}) == 200
