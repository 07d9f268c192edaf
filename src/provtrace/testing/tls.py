"""A private certificate authority for TLS tests on loopback: a CA, a server certificate for
127.0.0.1 and localhost, and client certificates for mutual TLS, written as PEM files that both
provtrace and the collector read. Nothing here is trusted outside the test that made it."""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = datetime.timedelta(days=2)


@dataclasses.dataclass(frozen=True)
class Identity:
    """A certificate and its private key, as PEM files."""

    certificate: Path
    key: Path


@dataclasses.dataclass(frozen=True)
class TestCA:
    """A CA's certificate and key on disk; :meth:`issue` signs leaf certificates with it."""

    __test__ = False  # not a pytest test class, despite the name

    directory: Path
    name: str = "provtrace test CA"

    @property
    def certificate(self) -> Path:
        return self.directory / f"{_slug(self.name)}.crt"

    @property
    def key(self) -> Path:
        return self.directory / f"{_slug(self.name)}.key"

    @classmethod
    def create(cls, directory: Path, name: str = "provtrace test CA") -> TestCA:
        """A new self-signed CA in ``directory``."""
        directory.mkdir(parents=True, exist_ok=True)
        ca = cls(directory, name)
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.timezone.utc)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        _write(ca.certificate, ca.key, certificate, key)
        return ca

    def issue(self, name: str, *, server: bool) -> Identity:
        """A leaf certificate signed by this CA: a server one valid for 127.0.0.1 and localhost,
        or a client one (mutual TLS) with ``name`` as its common name."""
        ca_key = serialization.load_pem_private_key(self.key.read_bytes(), password=None)
        ca_certificate = x509.load_pem_x509_certificate(self.certificate.read_bytes())
        if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
            raise TypeError("the test CA's key is not an EC key")
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
            )
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
        certificate = builder.sign(ca_key, hashes.SHA256())
        identity = Identity(self.directory / f"{_slug(name)}.crt", self.directory / f"{_slug(name)}.key")
        _write(identity.certificate, identity.key, certificate, key)
        return identity


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in name.lower())


def _write(
    certificate_path: Path, key_path: Path, certificate: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> None:
    certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.touch(mode=0o600)
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
