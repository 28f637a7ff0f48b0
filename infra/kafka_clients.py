"""The one place Kafka clients are built: ``settings.stack.kafka_servers`` plus ``settings.kafka`` (TLS, SASL).

kafka-python clients (CLI, replay, alert sink, benches): ``producer``, ``consumer``, ``admin``. aiokafka clients:
``aiokafka_args``. The Faust app: ``faust_args`` (its producer and consumers are aiokafka clients that get their
TLS/SASL from ``broker_credentials``). A test fails when a module of the package builds a client elsewhere.
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from sentimon.core.parts import KafkaSettings
from sentimon.core.settings import Settings, env_names, setting_name

if TYPE_CHECKING:
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer


def kafka_python_args(settings: Settings) -> dict[str, Any]:
    """Connection arguments of a kafka-python client (pure: no connection is made)."""
    kafka = settings.kafka
    args: dict[str, Any] = {"bootstrap_servers": settings.stack.kafka_servers}
    args.update(_security_args(kafka))
    if kafka.uses_tls:
        # kafka-python builds a verifying TLS context from these (the system's CAs when no cafile is given).
        args["ssl_check_hostname"] = kafka.ssl_check_hostname
        for name in ("cafile", "certfile", "keyfile"):
            path = getattr(kafka, f"ssl_{name}")
            if path is not None:
                args[f"ssl_{name}"] = str(path)
    return args


def producer(settings: Settings, **overrides: Any) -> KafkaProducer:
    """A kafka-python producer; ``overrides`` are KafkaProducer arguments (acks, linger_ms, ...)."""
    from kafka import KafkaProducer

    return KafkaProducer(**{**kafka_python_args(settings), **overrides})


def consumer(settings: Settings, *topics: str, **overrides: Any) -> KafkaConsumer:
    """A kafka-python consumer of ``topics`` (none: assign partitions later); ``overrides`` are KafkaConsumer
    arguments."""
    from kafka import KafkaConsumer

    return KafkaConsumer(*topics, **{**kafka_python_args(settings), **overrides})


def admin(settings: Settings, **overrides: Any) -> KafkaAdminClient:
    """A kafka-python admin client; ``overrides`` are KafkaAdminClient arguments."""
    from kafka import KafkaAdminClient

    return KafkaAdminClient(**{**kafka_python_args(settings), **overrides})


def ssl_context(kafka: KafkaSettings) -> ssl.SSLContext | None:
    """The TLS context of aiokafka clients (and Faust's): verifying the broker against ``ssl_cafile`` (else the
    system's CAs), with the client certificate for mutual TLS; None when the protocol uses no TLS."""
    if not kafka.uses_tls:
        return None
    from aiokafka.helpers import create_ssl_context

    context = create_ssl_context(
        cafile=kafka.ssl_cafile,
        certfile=kafka.ssl_certfile,
        keyfile=kafka.ssl_keyfile,
    )
    context.check_hostname = kafka.ssl_check_hostname  # the chain is still verified (CERT_REQUIRED)
    return context


def aiokafka_args(settings: Settings) -> dict[str, Any]:
    """Connection arguments of an aiokafka client (AIOKafkaProducer/Consumer/AdminClient)."""
    args: dict[str, Any] = {"bootstrap_servers": settings.stack.kafka_servers}
    args.update(_security_args(settings.kafka))
    context = ssl_context(settings.kafka)
    if context is not None:
        args["ssl_context"] = context
    return args


def aiokafka_admin(settings: Settings, **overrides: Any) -> Any:
    """An aiokafka admin client (start it on the loop that uses it); ``overrides`` are its arguments."""
    from aiokafka.admin import AIOKafkaAdminClient

    return AIOKafkaAdminClient(**{**aiokafka_args(settings), **overrides})


def faust_broker(kafka_servers: str) -> str:
    """Kafka lists hosts with commas; Faust URLs separate them with semicolons."""
    return ";".join(f"kafka://{h.strip()}" for h in kafka_servers.split(",") if h.strip())


def faust_credentials(kafka: KafkaSettings) -> Any:
    """``faust.App(broker_credentials=...)``: faust-streaming 0.15 turns it into the aiokafka arguments of every
    producer and consumer it makes (``credentials_to_aiokafka_auth``); None = PLAINTEXT."""
    import faust

    context = ssl_context(kafka)
    if kafka.uses_sasl:
        assert kafka.sasl_password is not None  # the settings refuse SASL without a login
        # An ssl_context makes it SASL_SSL, none SASL_PLAINTEXT.
        return faust.SASLCredentials(
            username=kafka.sasl_username,
            password=kafka.sasl_password.get_secret_value(),
            ssl_context=context,
            mechanism=kafka.sasl_mechanism,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None


def faust_args(settings: Settings) -> dict[str, Any]:
    """The Kafka arguments of ``faust.App``: ``broker`` and ``broker_credentials``."""
    return {
        "broker": faust_broker(settings.stack.kafka_servers),
        "broker_credentials": faust_credentials(settings.kafka),
    }


def settings_to_check(settings: Settings) -> str:
    """For "Kafka is unreachable" errors: the connection settings in force and where to change them (a refused
    login or certificate also shows up as an unreachable broker)."""
    kafka = settings.kafka
    names = ["security_protocol"]
    if kafka.uses_sasl:
        names += ["sasl_mechanism", "sasl_username", "sasl_password"]
    if kafka.uses_tls:
        names += ["ssl_cafile"] + (["ssl_certfile", "ssl_keyfile"] if kafka.ssl_certfile else [])
    listed = ", ".join(setting_name("kafka", n) for n in names)
    return f"connecting with security_protocol {kafka.security_protocol}: check {listed}"


def child_env(settings: Settings) -> dict[str, str]:
    """``SENTIMON_*`` variables that give a child process (a worker a bench starts) the same Kafka connection:
    the bootstrap servers and every ``kafka.*`` setting (the password in clear: an environment, never printed)."""
    env = {env_names("stack", "kafka_bootstrap")[1]: settings.stack.kafka_servers}
    for name, value in settings.kafka.model_dump().items():
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        env[env_names("kafka", name)[0]] = str(value)
    return env


def _security_args(kafka: KafkaSettings) -> dict[str, Any]:
    # The same names in kafka-python and aiokafka.
    args: dict[str, Any] = {"security_protocol": kafka.security_protocol}
    if kafka.uses_sasl:
        assert kafka.sasl_password is not None  # the settings refuse SASL without a login
        args["sasl_mechanism"] = kafka.sasl_mechanism
        args["sasl_plain_username"] = kafka.sasl_username
        args["sasl_plain_password"] = kafka.sasl_password.get_secret_value()
    return args
