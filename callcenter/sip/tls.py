"""TLS contexts for SIP over TLS (RFC 3261 §26, RFC 5630) and HTTPS, from PEM files.

``server_context`` is what a TLS listener presents (its certificate chain and key; with
``verify_client`` it asks every client for a certificate signed by ``ca_file``: mutual
TLS, for phones that each carry one). ``client_context`` is what we use when we dial a
TLS peer ourselves (a trunk, or a phone whose connection has gone): the peer's
certificate is checked against ``ca_file`` (or the system's store) unless
``verify_server`` is off. TLS 1.2 is the floor (RFC 8996 retired 1.0/1.1).

Every problem with the files is a ``TlsFileError`` naming the file and the reason, so
configuration validation can refuse to start with the key that holds the file.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

__all__ = ["TlsFileError", "check_pem", "client_context", "server_context", "sip_tls_options"]


class TlsFileError(ValueError):
    """A certificate, key or CA file that cannot be used: ``str()`` names file and reason."""


def check_pem(path: str, what: str) -> str:
    """``path`` if it is a readable PEM file holding a ``what`` ("CERTIFICATE",
    "PRIVATE KEY"); a TlsFileError saying why not otherwise."""
    p = Path(path)
    try:
        text = p.read_bytes()
    except FileNotFoundError:
        raise TlsFileError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise TlsFileError(f"{path}: is a directory") from None
    except PermissionError:
        raise TlsFileError(f"{path}: not readable by this user") from None
    except OSError as exc:
        raise TlsFileError(f"{path}: {exc.strerror or exc}") from None
    # "PRIVATE KEY" also matches "RSA PRIVATE KEY" / "EC PRIVATE KEY" blocks
    if b"-----BEGIN " not in text or what.encode() + b"-----" not in text:
        raise TlsFileError(f"{path}: no PEM {what.lower()} in it")
    return path


def _load_chain(ctx: ssl.SSLContext, cert_file: str, key_file: str) -> None:
    check_pem(cert_file, "CERTIFICATE")
    check_pem(key_file, "PRIVATE KEY")
    try:
        ctx.load_cert_chain(cert_file, key_file)
    except ssl.SSLError as exc:
        reason = exc.reason or str(exc)
        if "KEY_VALUES_MISMATCH" in str(reason).upper():
            reason = "the key does not belong to the certificate"
        raise TlsFileError(f"{cert_file} with {key_file}: {reason}") from None


def _load_ca(ctx: ssl.SSLContext, ca_file: str) -> None:
    check_pem(ca_file, "CERTIFICATE")
    try:
        ctx.load_verify_locations(cafile=ca_file)
    except ssl.SSLError as exc:
        raise TlsFileError(f"{ca_file}: {exc.reason or exc}") from None


def server_context(cert_file: str, key_file: str, ca_file: str | None = None,
                   verify_client: bool = False) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    _load_chain(ctx, cert_file, key_file)
    if verify_client:
        if not ca_file:
            raise TlsFileError("verify_client needs ca_file: the CA that signs the clients' certificates")
        _load_ca(ctx, ca_file)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def client_context(ca_file: str | None = None, verify_server: bool = True,
                   cert_file: str | None = None, key_file: str | None = None) -> ssl.SSLContext:
    """For connections we open. ``cert_file``/``key_file``: our certificate, for peers
    that want mutual TLS (most trunks do not)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if verify_server:
        if ca_file:
            _load_ca(ctx, ca_file)
        else:
            ctx.load_default_certs()
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cert_file and key_file:
        _load_chain(ctx, cert_file, key_file)
    return ctx


def sip_tls_options(cfg: Any) -> dict[str, Any]:
    """``SipTransportLayer`` keyword arguments for a ``sip.tls`` config (SipTlsCfg; None
    when there is none)."""
    if cfg is None:
        return {}
    return {
        "tls_server": server_context(cfg.cert_file, cfg.key_file, cfg.ca_file, cfg.verify_client),
        # our certificate goes along, for peers that ask for one (mutual TLS trunks)
        "tls_client": client_context(cfg.ca_file, cfg.verify_server, cfg.cert_file, cfg.key_file),
        "tls_advertised_port": cfg.advertised_port,
    }
