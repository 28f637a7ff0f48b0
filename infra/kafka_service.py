"""A single-node Apache Kafka broker in KRaft mode, from Maven Central jars (no Docker, no tarball)."""

from __future__ import annotations

import base64
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from sentimon.core.settings import Settings
from sentimon.infra.certs import ensure_certs, write_private
from sentimon.infra.errors import InfraError
from sentimon.infra.secure import KAFKA_BROKER_USER, KAFKA_CLIENT_USER, KAFKA_MECHANISM, SecureState
from sentimon.infra.service import Service, require_binary

KAFKA_DIR = Path(__file__).parent / "kafka"
POM = KAFKA_DIR / "pom.xml"
LOG4J2 = KAFKA_DIR / "log4j2.properties"


def server_properties(
    data_dir: Path, port: int, controller_port: int, partitions: int, secure: SecureListeners | None = None
) -> str:
    """The broker's configuration: PLAINTEXT on loopback, or with ``secure`` the listeners of `up --secure`."""
    listeners = secure.lines(port, controller_port) if secure else [
        f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name=PLAINTEXT",
    ]  # fmt: skip
    return "\n".join(
        [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@127.0.0.1:{controller_port}",
            "controller.listener.names=CONTROLLER",
            *listeners,
            f"log.dirs={data_dir}",
            f"num.partitions={partitions}",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=8",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            # Kafka 4 defaults these to 3 and 2 copies, which a single node cannot hold (share groups, KIP-932).
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            # A single node has nobody to wait for; the default 3 s delays every first group join.
            "group.initial.rebalance.delay.ms=0",
            # Faust never creates source topics and we create ours explicitly: typos should fail loudly.
            "auto.create.topics.enable=false",
            "",
        ]
    )


@dataclass(frozen=True)
class SecureListeners:
    """`up --secure`: clients reach one SASL_SSL listener (SCRAM-SHA-512 over TLS, and a client certificate
    signed by the local CA); the KRaft controller listens on loopback with mutual TLS, so only a holder of a
    certificate of that CA (the broker itself) speaks to it. No authorizer: every authenticated login is the
    application's (one client login), so ACLs would add nothing here."""

    keystore: Path  # PEM: the server key, then its certificate
    truststore: Path  # PEM: the local CA
    broker_user: str
    broker_password: str
    mechanism: str = "SCRAM-SHA-512"

    def lines(self, port: int, controller_port: int) -> list[str]:
        jaas = (
            "org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{self.broker_user}" password="{self.broker_password}";'
        )
        return [
            f"listeners=SASL_SSL://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
            f"advertised.listeners=SASL_SSL://127.0.0.1:{port}",
            "listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:SSL",
            "inter.broker.listener.name=SASL_SSL",
            f"sasl.enabled.mechanisms={self.mechanism}",
            f"sasl.mechanism.inter.broker.protocol={self.mechanism}",
            f"listener.name.sasl_ssl.{self.mechanism.lower()}.sasl.jaas.config={jaas}",
            "ssl.keystore.type=PEM",
            f"ssl.keystore.location={self.keystore}",
            "ssl.truststore.type=PEM",
            f"ssl.truststore.location={self.truststore}",
            "ssl.endpoint.identification.algorithm=https",
            "ssl.client.auth=required",
            "listener.name.controller.ssl.client.auth=required",
        ]


def cluster_id() -> str:
    """A random KRaft cluster id, never starting with "-" (the storage tool would read it as an option).

    Kafka's own ``Uuid.randomUuid`` draws again for the same reason; one id in 64 starts with "-".
    """
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cid.startswith("-"):
            return cid


class KafkaService(Service):
    name = "kafka"
    port_setting = "kafka_port"
    external_setting = "kafka_bootstrap"
    endpoint = "kafka_servers"

    @property
    def libs_dir(self) -> Path:
        return self.settings.stack.cache_dir / f"kafka-{self.settings.stack.kafka_version}" / "libs"

    @property
    def config_file(self) -> Path:
        return self.dir / "server.properties"

    @property
    def data_dir(self) -> Path:
        return self.dir / "data"

    def check_binaries(self) -> None:
        self.java = require_binary("java", "openjdk-17-jre-headless")
        if not self._jars_present():
            self.mvn = require_binary("mvn", "maven")

    def _jars_present(self) -> bool:
        return (self.libs_dir / f"kafka_2.13-{self.settings.stack.kafka_version}.jar").is_file()

    def fetch_jars(self) -> Path:
        """Download the broker and its dependencies from Maven Central into the cache (once)."""
        if self._jars_present():
            return self.libs_dir
        mvn = require_binary("mvn", "maven")
        tmp = self.libs_dir.with_name("libs.partial")
        cmd = [
            mvn, "-q", "-B", "-f", str(POM), "dependency:copy-dependencies",
            f"-Dkafka.version={self.settings.stack.kafka_version}", "-DincludeScope=runtime",
            f"-DoutputDirectory={tmp}",
        ]  # fmt: skip
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            raise InfraError(
                f"could not fetch Apache Kafka {self.settings.stack.kafka_version} from Maven Central "
                f"(mvn exit {result.returncode}):\n{(result.stdout + result.stderr)[-2000:]}"
            )
        tmp.rename(self.libs_dir)  # only a complete download takes the final name
        return self.libs_dir

    def _java_base(self) -> list[str]:
        return [
            self.java, f"-Xmx{self.settings.stack.kafka_heap}", "-Xms128m", "-XX:+UseG1GC",
            "-Djava.awt.headless=true", f"-Dlog4j2.configurationFile=file:{LOG4J2}",
            "-cp", f"{self.libs_dir}/*",
        ]  # fmt: skip

    def prepare(self) -> None:
        self.fetch_jars()
        state = SecureState(self.settings.stack.state_dir)
        found = state.secrets() if state.exists() else None
        secure = None
        if found is not None:
            certs = ensure_certs(state.certs.dir)
            keystore = self.dir / "keystore.pem"
            write_private(keystore, certs.server_key.read_bytes() + certs.server_cert.read_bytes())
            secure = SecureListeners(keystore, certs.ca_cert, KAFKA_BROKER_USER, found.kafka_broker_password)
        props = server_properties(
            self.data_dir, self.port, self.settings.stack.kafka_controller_port, self.settings.topics.partitions, secure
        )
        write_private(self.config_file, props.encode())  # the broker's own SCRAM password is in it
        if (self.data_dir / "meta.properties").is_file():
            return
        args = ["kafka.tools.StorageTool", "format", "-t", cluster_id(), "-c", str(self.config_file)]
        if found is not None:
            # KRaft keeps SCRAM logins in its metadata log: the broker's and the client's are written at format time.
            for user, password in ((KAFKA_BROKER_USER, found.kafka_broker_password),
                                   (KAFKA_CLIENT_USER, found.kafka_client_password)):  # fmt: skip
                args += ["--add-scram", f"{KAFKA_MECHANISM}=[name={user},password={password}]"]
        # The tool's arguments go in a java @argfile (0600), not on a command line every local user can read.
        argfile = self.dir / "format.args"
        write_private(argfile, "\n".join(args).encode())
        try:
            cmd = [*self._java_base(), f"@{argfile}"]
            result = subprocess.run(cmd, capture_output=True, text=True, cwd=self.dir)
        finally:
            argfile.unlink(missing_ok=True)
        if result.returncode != 0:
            raise InfraError(f"formatting Kafka storage in {self.data_dir} failed:\n{result.stderr[-2000:]}")

    def command(self) -> list[str]:
        return [*self._java_base(), "kafka.Kafka", str(self.config_file)]

    def probe(self) -> bool:
        host, _, port = self.url.split(",")[0].rpartition(":")
        from sentimon.infra.procs import port_open

        if not port_open(host or "127.0.0.1", int(port)):
            return False
        return metadata_ready(self.settings)


def metadata_ready(settings: Settings) -> bool:
    """True when the broker at ``settings.stack.kafka_servers`` answers a metadata request, connecting as every
    client does (``settings.kafka``: TLS, SASL); a listening socket is not enough."""
    import logging

    from kafka.errors import KafkaError

    from sentimon.infra import kafka_clients

    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    try:
        admin = kafka_clients.admin(settings, request_timeout_ms=3000, client_id="sentimon-probe")
    except (KafkaError, OSError, ValueError):
        return False
    try:
        admin.describe_cluster()
        return True
    except (KafkaError, OSError):
        return False
    finally:
        admin.close()
