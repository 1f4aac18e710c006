"""Credentials of the HTTP API: API keys (``cmm_...``, looked up by hash) and OAuth2 bearer JWTs.

A JWT is accepted when its signature verifies (HS256 with ``CLINICAL_MM_JWT_SECRET``, or RS256/ES256
with the PEM public key in ``CLINICAL_MM_JWT_PUBLIC_KEY_FILE``), it has not expired (``exp`` is required),
its audience is ours and, when configured, its issuer matches. Roles come from the ``roles`` claim (a
list) or the space-separated ``scope``; the actor is ``jwt:<sub>``, the name ``name`` or ``sub``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import jwt

from clinical_mm.core.errors import ConfigurationError
from clinical_mm.service.store import ROLES

__all__ = ["Credential", "JwtVerifier"]


@dataclass(frozen=True)
class Credential:
    """A verified token's caller: the audit actor (``jwt:<sub>``), its roles and its display name."""

    actor: str
    roles: frozenset[str]
    name: str


class JwtVerifier:
    """Verifies OAuth2 bearer JWTs with a shared secret (HS256) or a PEM public key (RS256, ES256)."""

    def __init__(self, *, secret: str | None, public_key_file: Path | None, issuer: str | None, audience: str) -> None:
        if secret and public_key_file:
            raise ConfigurationError("set either CLINICAL_MM_JWT_SECRET or CLINICAL_MM_JWT_PUBLIC_KEY_FILE, not both")
        if public_key_file is not None:
            try:
                self.key: str = public_key_file.read_text(encoding="ascii")
            except OSError as exc:
                raise ConfigurationError(f"{public_key_file}: cannot read JWT public key ({exc.strerror})") from None
            self.algorithms = ["RS256", "ES256"]
        elif secret:
            if len(secret) < 32:
                raise ConfigurationError("CLINICAL_MM_JWT_SECRET must be at least 32 characters")
            self.key, self.algorithms = secret, ["HS256"]
        else:
            raise ConfigurationError("no JWT key configured")
        self.issuer = issuer
        self.audience = audience

    def verify(self, token: str) -> Credential | None:
        """The credential of a valid token; None for an invalid, expired or role-less one."""
        try:
            claims = jwt.decode(token, self.key, algorithms=self.algorithms, audience=self.audience,
                                issuer=self.issuer, options={"require": ["exp", "sub"]}, leeway=30)
        except jwt.PyJWTError:
            return None
        raw = claims.get("roles")
        roles = set(raw) if isinstance(raw, list) else set(str(claims.get("scope", "")).split())
        roles &= set(ROLES)
        if not roles:
            return None
        sub = str(claims["sub"])
        return Credential(actor=f"jwt:{sub}", roles=frozenset(roles), name=str(claims.get("name") or sub))
