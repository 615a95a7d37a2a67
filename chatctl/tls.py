"""TLS for chatctl: the server's self-signed certificate, fingerprints, SSL contexts and
the client's known-servers file. No asyncio and no terminal code.

A server started with ``--tls`` and no certificate of its own makes a self-signed one
(an EC P-256 key) in the user's config folder on first start and reuses it after, so
its fingerprint stays the same and clients that pinned it keep trusting it. Clients
verify a server against the system's CAs (or ``--tls-ca``); a server no CA vouches
for is pinned on first contact, the way ``ssh`` does it, by the SHA-256 digest of its
DER certificate, kept in ``known_servers`` next to the certificate.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import ipaddress
import os
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

#: Where the certificate, its key and the known servers live (see ``config_dir``).
CONFIG_ENV = "CHATCTL_CONFIG_DIR"
CERT_FILE = "server-cert.pem"
KEY_FILE = "server-key.pem"
KNOWN_SERVERS_FILE = "known_servers"
#: Seconds a TLS handshake may take, on either side.
HANDSHAKE_TIMEOUT = 10.0
#: OpenSSL verification results that mean "no CA vouches for this certificate"
#: (self-signed, unknown issuer), as opposed to "this certificate is wrong" (expired,
#: another host's): only the former may be pinned instead.
UNKNOWN_ISSUER_CODES = frozenset({18, 19, 20, 21})
#: OpenSSL's reasons for a first record that is not TLS at all: the peer speaks plain
#: chatctl (or HTTP, or anything else). The server logs ``not_tls`` for them, the client
#: says "the server does not use TLS".
NOT_TLS_REASONS = frozenset(
    {
        "WRONG_VERSION_NUMBER",
        "HTTP_REQUEST",
        "HTTPS_PROXY_REQUEST",
        "UNKNOWN_PROTOCOL",
        "RECORD_LAYER_FAILURE",
        "PACKET_LENGTH_TOO_LONG",
        "UNSUPPORTED_PROTOCOL",
        "WRONG_SSL_VERSION",
    }
)


class TlsSetupError(Exception):
    """A certificate, key or known-servers file that cannot be used; one line for a human."""


def config_dir() -> Path:
    """``$CHATCTL_CONFIG_DIR``, else ``$XDG_CONFIG_HOME/chatctl``, else ``~/.config/chatctl``."""
    explicit = os.environ.get(CONFIG_ENV)
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CONFIG_HOME")
    base = Path(xdg) if xdg else Path.home() / ".config"
    return base / "chatctl"


# --------------------------------------------------------------------------- fingerprints


def fingerprint(der: bytes) -> str:
    """``SHA256:<64 lowercase hex digits>`` of a DER certificate."""
    return "SHA256:" + hashlib.sha256(der).hexdigest()


def parse_fingerprint(text: str) -> str:
    """A fingerprint as the user typed it, in the one form ``fingerprint`` returns.

    Accepts hex with or without colons (any case) and base64 (``ssh-keygen`` style,
    padding optional), with or without the ``SHA256:`` prefix. Raises ValueError.
    """
    value = text.strip()
    if value[:7].upper() == "SHA256:":
        value = value[7:]
    hex_digits = value.replace(":", "")
    if len(hex_digits) == 64:
        try:
            return "SHA256:" + bytes.fromhex(hex_digits).hex()
        except ValueError:
            pass
    try:
        raw = base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) == 32:
        return "SHA256:" + raw.hex()
    raise ValueError("expected SHA256: followed by 64 hex digits (colons allowed) or base64")


def certificate_fingerprint(cert_file: Path) -> str:
    """The fingerprint of the first certificate in a PEM file."""
    try:
        pem = cert_file.read_text(encoding="ascii")
        der = ssl.PEM_cert_to_DER_cert(pem[pem.index("-----BEGIN CERTIFICATE-----") :])
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise TlsSetupError(f"cannot read a certificate from {cert_file}: {_why(exc)}") from None
    return fingerprint(der)


def _why(exc: Exception) -> str:
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno).lower()
    return "not a PEM certificate" if isinstance(exc, ValueError) else type(exc).__name__


# --------------------------------------------------------------------------- server side


def self_signed(directory: Path | None = None) -> tuple[Path, Path, bool]:
    """The server's own certificate and key, made on first use; ``(cert, key, created)``.

    The key file is written with mode 0600 (created that way, never widened later),
    the folder with 0700.
    """
    folder = directory or config_dir()
    cert, key = folder / CERT_FILE, folder / KEY_FILE
    if cert.exists() and key.exists():
        return cert, key, False
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        cert_pem, key_pem = _generate()
        key.unlink(missing_ok=True)
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(key_pem)
        cert.write_bytes(cert_pem)
    except OSError as exc:
        raise TlsSetupError(f"cannot write the TLS certificate in {folder}: {_why(exc)}") from None
    return cert, key, True


def _generate() -> tuple[bytes, bytes]:
    """A self-signed certificate (PEM) and its unencrypted key (PEM, PKCS#8)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    private = ec.generate_private_key(ec.SECP256R1())
    host = socket.gethostname() or "localhost"
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"chatctl on {host}"[:64])])
    now = datetime.datetime.now(datetime.UTC)
    alt_names: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    if host != "localhost" and host.isascii():
        alt_names.append(x509.DNSName(host))
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(private, hashes.SHA256())
    )
    key_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return certificate.public_bytes(serialization.Encoding.PEM), key_pem


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """What ``chatctl serve --tls`` listens with: TLS 1.2 or newer."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        # Never the exception's own text: it could quote the key file's content.
        why = os.strerror(exc.errno).lower() if isinstance(exc, OSError) and exc.errno else ""
        detail = why if why and not isinstance(exc, ssl.SSLError) else "not a matching PEM pair"
        raise TlsSetupError(
            f"cannot load the TLS certificate {cert} and key {key}: {detail}"
        ) from None
    return context


# --------------------------------------------------------------------------- client side


def verifying_context(cafile: Path | None = None) -> ssl.SSLContext:
    """Verify the server against ``cafile`` only, or else the system's CAs."""
    try:
        context = ssl.create_default_context(cafile=str(cafile) if cafile else None)
    except (OSError, ssl.SSLError) as exc:
        raise TlsSetupError(f"cannot read the CA file {cafile}: {_why(exc)}") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def pinning_context() -> ssl.SSLContext:
    """Accept any certificate: the caller checks its fingerprint against a pin itself.

    Used only when a pin exists, or to read an unknown server's fingerprint to show it.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the fingerprint is compared to a pin instead
    return context


@dataclass(frozen=True)
class Pin:
    """A known server's fingerprint, and the line of the known-servers file it is on."""

    fingerprint: str
    path: Path
    line: int


class KnownServers:
    """``host:port fingerprint`` lines; ``#`` starts a comment. Later lines win."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or config_dir() / KNOWN_SERVERS_FILE

    def lookup(self, where: str) -> Pin | None:
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise TlsSetupError(f"cannot read {self.path}: {_why(exc)}") from None
        found = None
        for number, line in enumerate(lines, start=1):
            parts = line.split("#", 1)[0].split()
            if len(parts) == 2 and parts[0] == where:
                try:
                    found = Pin(parse_fingerprint(parts[1]), self.path, number)
                except ValueError:
                    continue
        return found

    def add(self, where: str, print_: str) -> None:
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as out:
                out.write(f"{where} {print_}\n")
        except OSError as exc:
            raise TlsSetupError(f"cannot write {self.path}: {_why(exc)}") from None
