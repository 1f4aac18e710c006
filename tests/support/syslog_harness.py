"""A real syslog daemon for the tests: Debian's rsyslog with its GnuTLS driver, taking RFC 5425 (syslog over TLS)
on 127.0.0.1 and writing each message's raw text to a file; with a throwaway CA and server certificate."""

from __future__ import annotations

import datetime as dt
import ipaddress
import shutil
import subprocess
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = ["RSYSLOGD", "Rsyslog", "make_ca_and_server_cert"]

RSYSLOGD = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def make_ca_and_server_cert(folder: Path) -> tuple[Path, Path, Path]:
    """(CA certificate, server certificate, server key) in PEM under ``folder``; the server's for 127.0.0.1."""
    now = dt.datetime.now(dt.UTC)
    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("clinical-mm test CA")).issuer_name(_name("clinical-mm test CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    server = (x509.CertificateBuilder().subject_name(_name("127.0.0.1")).issuer_name(ca.subject)
              .public_key(server_key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
              .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                             critical=False)
              .sign(ca_key, hashes.SHA256()))
    folder.mkdir(parents=True, exist_ok=True)
    paths = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(server_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
    paths[2].chmod(0o600)
    return paths


class Rsyslog:
    """rsyslogd in the foreground with its own configuration: TLS on ``127.0.0.1:port``, messages to ``received``."""

    def __init__(self, folder: Path, port: int) -> None:
        self.folder, self.port = folder, port
        self.received = folder / "received.log"
        self.ca, cert, key = make_ca_and_server_cert(folder / "tls")
        (folder / "work").mkdir(parents=True, exist_ok=True)
        self.config = folder / "rsyslog.conf"
        self.config.write_text(f"""
global(workDirectory="{folder / 'work'}" maxMessageSize="64k"
       DefaultNetstreamDriver="gtls" DefaultNetstreamDriverCAFile="{self.ca}"
       DefaultNetstreamDriverCertFile="{cert}" DefaultNetstreamDriverKeyFile="{key}")
module(load="imtcp" StreamDriver.Name="gtls" StreamDriver.Mode="1" StreamDriver.AuthMode="anon")
input(type="imtcp" port="{port}" address="127.0.0.1")
template(name="raw" type="string" string="%rawmsg%\\n")
*.* action(type="omfile" file="{self.received}" template="raw")
""")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Rsyslog:
        log = (self.folder / "rsyslogd.out").open("ab")
        self.proc = subprocess.Popen([RSYSLOGD, "-n", "-f", str(self.config), "-i", str(self.folder / "rsyslogd.pid")],
                                     stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while time.time() < deadline:
            assert self.proc.poll() is None, (self.folder / "rsyslogd.out").read_text()
            probe = subprocess.run(["ss", "-ltn", f"sport = :{self.port}"], capture_output=True, text=True)
            if f":{self.port}" in probe.stdout:
                return self
            time.sleep(0.1)
        raise AssertionError("rsyslogd did not start listening")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)

    def messages(self, expect: int, timeout_s: float = 20.0) -> list[str]:
        """The messages written so far, once there are ``expect`` of them (rsyslog writes asynchronously)."""
        deadline = time.time() + timeout_s
        lines: list[str] = []
        while time.time() < deadline:
            lines = self.received.read_text(encoding="utf-8").splitlines() if self.received.exists() else []
            if len(lines) >= expect:
                break
            time.sleep(0.1)
        return lines
