"""Syslog over TLS to a hospital's audit record repository: RFC 5424 messages in RFC 5425 framing (octet counting),
as IHE ATNA's Record Audit Event transaction sends them."""

from __future__ import annotations

import datetime as dt
import socket
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from clinical_mm.core.errors import ConfigurationError, RemoteUnavailableError

__all__ = ["SyslogClient", "SyslogTarget", "rfc5424"]

#: facility 10 (security/authorization) * 8 + severity 5 (notice), as ATNA sends audit messages
AUDIT_PRI = 85
_NIL = "-"


def _sd_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def rfc5424(message: str, *, msgid: str, app_name: str = "clinical-mm", hostname: str | None = None,
            timestamp: str | None = None, structured: Mapping[str, Mapping[str, str]] | None = None,
            pri: int = AUDIT_PRI) -> bytes:
    """One RFC 5424 syslog message: ``<PRI>1 TIMESTAMP HOST APP - MSGID [SD] MSG`` with the message in UTF-8 (BOM
    first, as the RFC asks for UTF-8 text)."""
    host = (hostname or socket.gethostname() or _NIL)[:255]
    when = timestamp or dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")
    sd = "".join(f"[{sd_id}" + "".join(f' {k}="{_sd_value(v)}"' for k, v in params.items()) + "]"
                 for sd_id, params in (structured or {}).items()) or _NIL
    header = f"<{pri}>1 {when} {host} {app_name[:48]} {_NIL} {msgid[:32]} {sd} "
    return header.encode("utf-8") + b"\xef\xbb\xbf" + message.encode("utf-8")


@dataclass(frozen=True)
class SyslogTarget:
    """Where audit messages go: ``host:port`` over TLS, the server checked against ``ca_file`` (the system's CAs
    when none), with a client certificate when the repository asks for mutual TLS."""

    host: str
    port: int
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None

    @classmethod
    def parse(cls, address: str, ca_file: Path | None = None, cert_file: Path | None = None,
              key_file: Path | None = None) -> SyslogTarget:
        host, sep, port = address.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigurationError("the syslog target must be HOST:PORT")
        return cls(host.strip("[]"), int(port), ca_file, cert_file, key_file)


class SyslogClient:
    """Sends messages over one TLS connection per :meth:`send`; a repository that is down or refuses the handshake
    is a :class:`RemoteUnavailableError` (nothing was half-sent that the caller counts as sent)."""

    def __init__(self, target: SyslogTarget, timeout_s: float = 10.0) -> None:
        self.target = target
        self.timeout_s = timeout_s
        try:
            self._context = ssl.create_default_context(cafile=str(target.ca_file) if target.ca_file else None)
            if target.cert_file is not None:
                self._context.load_cert_chain(str(target.cert_file),
                                              str(target.key_file) if target.key_file is not None else None)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigurationError(f"syslog TLS: cannot load the certificates ({exc.__class__.__name__})") from None

    def send(self, messages: Iterable[bytes]) -> int:
        """Send each message framed as ``LEN SP MSG``; the number sent."""
        sent = 0
        where = f"syslog {self.target.host}:{self.target.port}"
        try:
            with socket.create_connection((self.target.host, self.target.port), timeout=self.timeout_s) as raw, \
                    self._context.wrap_socket(raw, server_hostname=self.target.host) as tls:
                for message in messages:
                    tls.sendall(f"{len(message)} ".encode("ascii") + message)
                    sent += 1
                try:  # TLS close: rsyslog answers our close_notify by closing the connection without its own
                    tls.unwrap()
                except ssl.SSLEOFError:
                    pass
        except ssl.SSLError as exc:
            raise RemoteUnavailableError(f"{where}: TLS failed ({exc.reason or exc.__class__.__name__})") from None
        except OSError as exc:
            raise RemoteUnavailableError(f"{where}: unreachable ({exc.__class__.__name__})") from None
        return sent
