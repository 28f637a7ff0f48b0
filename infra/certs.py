"""A local certificate authority for `sentimon up --secure`: one CA, a server certificate the services present
(Kafka, Redis) and a client certificate, all for 127.0.0.1 and localhost, made once at first start.

Keys are PKCS#8 PEM without a passphrase (Kafka >= 3.2 reads such files as ``ssl.keystore.type=PEM``), written
mode 0600; the directory is 0700. Elliptic-curve keys (P-256): every TLS stack here reads them, and making one
takes microseconds where an RSA key takes tens of milliseconds.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

# Long enough that a developer's state dir never expires under them; regenerated only with the state dir.
VALID_DAYS = 825
HOSTS = ("localhost",)
ADDRESSES = ("127.0.0.1",)
CA_NAME = "sentimon local CA"


@dataclass(frozen=True)
class CertFiles:
    """Where the certificates of one state dir live (``<state_dir>/tls``)."""

    dir: Path

    @property
    def ca_cert(self) -> Path:
        return self.dir / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.dir / "ca.key"

    @property
    def server_cert(self) -> Path:
        return self.dir / "server.pem"

    @property
    def server_key(self) -> Path:
        return self.dir / "server.key"

    @property
    def client_cert(self) -> Path:
        return self.dir / "client.pem"

    @property
    def client_key(self) -> Path:
        return self.dir / "client.key"

    @property
    def keys(self) -> tuple[Path, ...]:
        return self.ca_key, self.server_key, self.client_key

    def complete(self) -> bool:
        paths = (self.ca_cert, self.server_cert, self.client_cert, *self.keys)
        return all(p.is_file() for p in paths)


def ensure_certs(directory: Path) -> CertFiles:
    """The CA, server and client certificates under ``directory``, made on the first call (idempotent)."""
    files = CertFiles(directory)
    if files.complete():
        return files
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.chmod(0o700)
    ca_key, ca_cert = _make_ca()
    _write_key(files.ca_key, ca_key)
    _write_cert(files.ca_cert, ca_cert)
    for cert_path, key_path, server in (
        (files.server_cert, files.server_key, True),
        (files.client_cert, files.client_key, False),
    ):
        key, cert = _make_leaf(ca_key, ca_cert, server=server)
        _write_key(key_path, key)
        _write_cert(cert_path, cert)
    return files


def _new_key():
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _validity(builder):
    now = dt.datetime.now(dt.UTC)
    # Backdated a little: a clock a few minutes behind on the client would otherwise call it not yet valid.
    return builder.not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=VALID_DAYS))


def _key_usage(*, ca: bool):
    from cryptography import x509

    # A CA signs certificates; a leaf signs handshakes (ECDSA) and agrees keys (ECDH suites).
    flags = dict.fromkeys(
        ("content_commitment", "key_encipherment", "data_encipherment", "encipher_only", "decipher_only"), False
    )
    return x509.KeyUsage(digital_signature=True, key_agreement=not ca, key_cert_sign=ca, crl_sign=ca, **flags)


def _make_ca():
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    key = _new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    return key, _validity(builder).sign(key, hashes.SHA256())


def _make_leaf(ca_key, ca_cert, *, server: bool):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = _new_key()
    common_name = "sentimon server" if server else "sentimon client"
    # The server certificate also authenticates the broker to its own controller (mutual TLS on that listener).
    usages = (
        [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
        if server
        else [ExtendedKeyUsageOID.CLIENT_AUTH]
    )
    san = [x509.DNSName(h) for h in HOSTS] + [x509.IPAddress(ipaddress.ip_address(a)) for a in ADDRESSES]
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    return key, _validity(builder).sign(ca_key, hashes.SHA256())


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` readable by its owner only, never briefly wider (created 0600, then filled)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_CREAT
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _write_key(path: Path, key) -> None:
    from cryptography.hazmat.primitives import serialization

    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    write_private(path, pem)


def _write_cert(path: Path, cert) -> None:
    from cryptography.hazmat.primitives import serialization

    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
