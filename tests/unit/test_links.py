"""Signed action links: what they sign, when they are refused, and that an ack link works once."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from lazarus.config import ServerSettings
from lazarus.notify.links import LinkRefused, LinkSigner, Reach, use_once
from lazarus.secrets import Secret
from lazarus.store import Store

NOW = 1_800_000_000.0
SIGNER = LinkSigner("https://lazarus.example.com/", Secret("k" * 32), ttl=3600)


def query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def test_a_link_names_its_action_and_incident_and_verifies_until_it_expires() -> None:
    url = SIGNER.url("ack", 12, NOW)
    assert url.startswith("https://lazarus.example.com/act/ack?incident=12&expires=1800003600&")
    assert SIGNER.verify("ack", query(url), NOW + 3599) == 12
    with pytest.raises(LinkRefused, match="expired"):
        SIGNER.verify("ack", query(url), NOW + 3601)


@pytest.mark.parametrize(
    "change",
    [
        lambda q: {**q, "incident": ["13"]},  # another incident
        lambda q: {**q, "expires": ["9999999999"]},  # a longer life
        lambda q: {**q, "nonce": ["other"]},  # another use
        lambda q: {
            **q,
            "sig": [q["sig"][0][:-1] + ("1" if q["sig"][0].endswith("0") else "0")],
        },  # one character
        lambda q: {k: v for k, v in q.items() if k != "sig"},
    ],
)
def test_a_changed_link_is_refused(change) -> None:
    q = query(SIGNER.url("ack", 12, NOW))
    with pytest.raises(LinkRefused, match="not valid"):
        SIGNER.verify("ack", change(q), NOW)


def test_a_link_is_scoped_to_its_action_and_its_key() -> None:
    q = query(SIGNER.url("silence", 12, NOW))
    with pytest.raises(LinkRefused):
        SIGNER.verify("ack", q, NOW)
    other = LinkSigner("https://lazarus.example.com", Secret("x" * 32), ttl=3600)
    with pytest.raises(LinkRefused):
        other.verify("silence", q, NOW)


def test_a_nonce_is_spent_once(tmp_path: Path) -> None:
    store = Store(tmp_path / "lazarus.db")
    try:
        use_once(store, "ack", 12, "n1", NOW)
        with pytest.raises(LinkRefused, match="used already"):
            use_once(store, "ack", 12, "n1", NOW + 1)
        use_once(store, "ack", 12, "n2", NOW + 2)
    finally:
        store.close()


def test_shell_lines_quote_the_config_path() -> None:
    assert Reach("/etc/my fleet.yaml").shell("ack", 12) == "lazarus ack -c '/etc/my fleet.yaml' 12"
    assert Reach().shell("silence expire", 3) == "lazarus silence expire 3"


def test_the_link_key_must_be_a_secret_reference() -> None:
    with pytest.raises(ValueError, match="secret reference"):
        ServerSettings.model_validate({"token": "env:T", "links": {"key": "inline-key"}})
    ok = ServerSettings.model_validate({"token": "env:T", "links": {"key": "secret:k"}})
    assert ok.links is not None and ok.links.ttl == 43200 and ok.links.silence == 7200


def test_links_from_a_server_listening_everywhere_need_its_public_url(tmp_path: Path) -> None:
    from lazarus.config import load_config
    from lazarus.errors import ConfigError

    path = tmp_path / "fleet.yaml"
    path.write_text(
        "inventory: {ssh: {key: id}, hosts: [{name: web-1, address: 127.0.0.1}]}\n"
        "server:\n  listen: 0.0.0.0:9095\n  token: env:T\n  links: {key: env:K}\n"
    )
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    said = str(getattr(raised.value, "errors", [raised.value])[0])
    assert "fleet.yaml:5: server.links.url: listen is 0.0.0.0:9095" in said
