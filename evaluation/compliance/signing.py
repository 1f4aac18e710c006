"""A detached Ed25519 signature over an evaluation's outputs (``signature.json``), and its verification.

``signature.json`` holds the sha256 of every output file, the signer's public key and the signature over the
canonical JSON of both. Verification recomputes every hash, refuses a file added to or removed from the folder,
and checks the signature; with ``--public-key`` it also checks the signer is the expected key (without it, anyone
could re-sign a changed report with a key of their own: the fingerprint is printed to be compared).

A key: ``openssl genpkey -algorithm ed25519 -out evaluation-key.pem`` (its public half: ``openssl pkey -in
evaluation-key.pem -pubout -out evaluation-key.pub.pem``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from clinical_mm.audit.signing import load_private_key, load_public_key
from clinical_mm.core.errors import InputError
from clinical_mm.evaluation.compliance.manifest import file_sha256

__all__ = ["SIGNATURE_FILE", "SignatureError", "fingerprint", "load_private_key", "sign_outputs", "verify_outputs"]

SIGNATURE_FILE = "signature.json"


class SignatureError(InputError):
    """The outputs do not match their signature: a file changed, added or removed, or a bad or foreign signature."""


def _raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def fingerprint(public: Ed25519PublicKey) -> str:
    """The sha256 of the raw public key, in hex (the first 16 characters name it)."""
    return hashlib.sha256(_raw(public)).hexdigest()


def _canonical(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")


def _files(folder: Path) -> list[str]:
    """Every entry under ``folder`` but the top-level signature file, as paths relative to it; a symbolic link or
    anything that is not a plain file or folder is refused (:class:`SignatureError`): what is signed and checked
    is the folder's own bytes, nothing it points to."""
    names = []
    for top, dirs, files in os.walk(folder, followlinks=False):
        for name in [*dirs, *files]:
            path = Path(top) / name
            if path.is_symlink() or not (path.is_dir() or path.is_file()):
                raise SignatureError(f"{path.relative_to(folder).as_posix()}: a link or special file; an "
                                     "evaluation's outputs are plain files")
        names += [(Path(top) / name).relative_to(folder).as_posix() for name in files]
    return sorted(n for n in names if n != SIGNATURE_FILE)


def sign_outputs(folder: Path, key: Ed25519PrivateKey, signer: str, signed_at: str) -> dict[str, Any]:
    """Write ``folder/signature.json`` over every file in ``folder``; return it."""
    body = {"algorithm": "Ed25519", "signer": signer, "signed_at": signed_at,
            "public_key": base64.b64encode(_raw(key.public_key())).decode("ascii"),
            "files": {name: file_sha256(folder / name) for name in _files(folder)}}
    signed = {**body, "signature": base64.b64encode(key.sign(_canonical(body))).decode("ascii")}
    (folder / SIGNATURE_FILE).write_text(json.dumps(signed, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return signed


def verify_outputs(folder: Path, public_key: Path | None = None) -> dict[str, Any]:
    """Check ``folder`` against its signature; raise :class:`SignatureError` naming what does not match."""
    path = folder / SIGNATURE_FILE
    try:
        signed = json.loads(path.read_text(encoding="utf-8"))
        body = {k: signed[k] for k in ("algorithm", "signer", "signed_at", "public_key", "files")}
        signature = base64.b64decode(signed["signature"], validate=True)
        embedded = Ed25519PublicKey.from_public_bytes(base64.b64decode(body["public_key"], validate=True))
    except FileNotFoundError:
        raise SignatureError(f"{folder}: no {SIGNATURE_FILE}: the outputs are not signed") from None
    except (OSError, ValueError, KeyError, TypeError):
        raise SignatureError(f"{path}: malformed signature file") from None
    if public_key is not None and _raw(load_public_key(public_key, private_will_do=True)) != _raw(embedded):
        raise SignatureError(f"signed by another key (fingerprint {fingerprint(embedded)[:16]}), not by {public_key.name}")
    try:
        embedded.verify(signature, _canonical(body))
    except InvalidSignature:
        raise SignatureError("the signature does not match the signed file list") from None
    listed, present = set(body["files"]), set(_files(folder))
    problems = [f"{name}: added after signing" for name in sorted(present - listed)]
    problems += [f"{name}: missing" for name in sorted(listed - present)]
    problems += [f"{name}: changed after signing" for name in sorted(listed & present)
                 if file_sha256(folder / name) != body["files"][name]]
    if problems:
        raise SignatureError("; ".join(problems))
    return {"files": len(listed), "signer": body["signer"], "signed_at": body["signed_at"],
            "fingerprint": fingerprint(embedded)}
