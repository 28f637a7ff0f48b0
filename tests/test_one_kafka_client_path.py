"""Every Kafka client of the package is built by ``sentimon.infra.kafka_clients``, so the security settings
(``kafka.*``: TLS, SASL) reach all of them: a client built elsewhere would connect in PLAINTEXT."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import sentimon

PACKAGE = Path(sentimon.__file__).resolve().parent
THE_ONE_PLACE = (PACKAGE / "infra" / "kafka_clients.py").resolve()
CLIENTS = {
    "KafkaProducer",
    "KafkaConsumer",
    "KafkaAdminClient",
    "AIOKafkaProducer",
    "AIOKafkaConsumer",
    "AIOKafkaAdminClient",
    "AIOKafkaClient",
}


def package_modules() -> dict[Path, str]:
    """Resolved path -> the path as seen under sentimon/ (parts are symlinks to top-level folders)."""
    found: dict[Path, str] = {}
    for folder, _, files in os.walk(PACKAGE, followlinks=True):
        for name in files:
            if name.endswith(".py"):
                path = Path(folder) / name
                found.setdefault(path.resolve(), str(path.relative_to(PACKAGE.parent)))
    return found


def client_uses(source: str) -> list[str]:
    """Lines that import, name or call a Kafka client class, or build a Faust app without ``faust_args``."""
    hits = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            names = [a.name for a in node.names if a.name in CLIENTS]
            hits += [f"{node.lineno}: imports {n}" for n in names]
        elif isinstance(node, ast.Name) and node.id in CLIENTS:
            hits.append(f"{node.lineno}: {node.id}")
        elif isinstance(node, ast.Attribute) and node.attr in CLIENTS:
            hits.append(f"{node.lineno}: .{node.attr}")
        elif isinstance(node, ast.Call) and _is_faust_app(node.func):
            spread = [k.value for k in node.keywords if k.arg is None]
            if not any(isinstance(v, ast.Call) and _name(v.func) == "faust_args" for v in spread):
                hits.append(f"{node.lineno}: faust.App without **kafka_clients.faust_args(settings)")
    return hits


def _name(func: ast.expr) -> str:
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def _is_faust_app(func: ast.expr) -> bool:
    return isinstance(func, ast.Attribute) and func.attr == "App" and _name(func.value) == "faust"


def test_the_scan_sees_the_package_through_its_symlinked_parts() -> None:
    seen = set(package_modules().values())
    assert "sentimon/streams/app.py" in seen and "sentimon/alerts/sinks.py" in seen
    assert "sentimon/infra/kafka_clients.py" in seen


def test_the_scan_finds_each_way_of_building_a_client() -> None:
    assert client_uses("from kafka import KafkaConsumer, TopicPartition\n")
    assert client_uses("import kafka\nkafka.KafkaProducer(bootstrap_servers='x')\n")
    assert client_uses("from aiokafka import admin\nadmin.AIOKafkaAdminClient()\n")
    assert client_uses("import faust\nfaust.App('id', broker='kafka://x')\n")
    assert not client_uses("import faust\nfaust.App('id', **kafka_clients.faust_args(settings))\n")
    assert not client_uses("from kafka import TopicPartition\nfrom kafka.errors import KafkaError\n")


def test_no_module_builds_a_kafka_client_outside_kafka_clients() -> None:
    offenders = {
        shown: hits
        for path, shown in package_modules().items()
        if path != THE_ONE_PLACE and (hits := client_uses(path.read_text()))
    }
    assert not offenders, f"build Kafka clients with sentimon.infra.kafka_clients: {offenders}"
