"""How a message lets the on-call act: the exact shell line, the board, and signed links.

A signed link (``/act/ack?incident=12&expires=...&nonce=...&sig=...``) is its own
authentication, scoped to one action on one incident until it expires: an HMAC-SHA256 over
those fields with a key from the secret store (``server.links.key``). ``lazarus serve`` answers
its GET with a page that asks to confirm and acts on the POST only, so a mail scanner that
fetches every link acts on nothing. An ack link is used once: its nonce is kept in the store.

    signer = LinkSigner("https://lazarus.example", resolve("secret:link-key"), ttl=43200)
    url = signer.url("ack", 12, now)
    signer.verify("ack", parse_qs(urlsplit(url).query), now)   # -> 12, or LinkRefused
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlencode

from lazarus.errors import LazarusError
from lazarus.secrets import Secret
from lazarus.store import Store

Action = Literal["ack", "silence"]
ACTIONS: tuple[Action, ...] = ("ack", "silence")
PATH = "/act/{action}"


class LinkRefused(LazarusError):
    """A signed link that may not act: tampered, expired, already used or unknown."""


@dataclass(frozen=True)
class LinkSigner:
    """Makes and checks signed action links under one key; ``base_url`` is what the on-call's
    browser reaches ``lazarus serve`` at."""

    base_url: str
    key: Secret
    ttl: float

    def url(self, action: Action, incident_id: int, now: float) -> str:
        fields = {
            "incident": str(incident_id),
            "expires": str(int(now + self.ttl)),
            "nonce": secrets.token_urlsafe(12),
        }
        fields["sig"] = self._sign(action, fields)
        path = PATH.format(action=action)
        return f"{self.base_url.rstrip('/')}{path}?{urlencode(fields)}"

    def verify(self, action: Action, query: Mapping[str, Sequence[str]], now: float) -> int:
        """The incident a link names, once its signature and expiry hold; else LinkRefused."""
        fields = {k: _one(query, k) for k in ("incident", "expires", "nonce")}
        given = _one(query, "sig")
        if not hmac.compare_digest(given.encode(), self._sign(action, fields).encode()):
            raise LinkRefused("this link is not valid (it was changed, or signed by another key)")
        if not fields["expires"].isdigit() or int(fields["expires"]) < now:
            raise LinkRefused("this link has expired: act from the shell line in the message")
        return int(fields["incident"])

    def _sign(self, action: str, fields: Mapping[str, str]) -> str:
        text = "\n".join([action, fields["incident"], fields["expires"], fields["nonce"]])
        return hmac.new(self.key.reveal().encode(), text.encode(), hashlib.sha256).hexdigest()


def _one(query: Mapping[str, Sequence[str]], name: str) -> str:
    values = query.get(name) or [""]
    return values[0]


def use_once(store: Store, action: Action, incident_id: int, nonce: str, now: float) -> None:
    """Spend a link's nonce; LinkRefused when it was spent before (two clicks, two tabs)."""
    with store.transaction() as db:
        if db.execute("SELECT 1 FROM link_uses WHERE nonce = ?", (nonce,)).fetchone():
            raise LinkRefused(f"this {action} link was used already")
        db.execute(
            "INSERT INTO link_uses (nonce, action, incident_id, at) VALUES (?, ?, ?, ?)",
            (nonce, action, incident_id, now),
        )


@dataclass(frozen=True)
class Reach:
    """What a message needs to let the on-call act: the config path for the shell lines, the
    board's URL for incidents without a recover run, and the signer when links are served."""

    config_path: str = ""
    board_url: str = ""
    signer: LinkSigner | None = None
    silence_for: float = 7200.0

    def shell(self, command: str, *args: str | int) -> str:
        """``lazarus ack -c /etc/lazarus/fleet.yaml 12``: the line as a person pastes it."""
        config = ["-c", self.config_path] if self.config_path else []
        return shlex.join(["lazarus", *command.split(), *config, *map(str, args)])
