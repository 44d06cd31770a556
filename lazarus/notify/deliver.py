"""Send one message to one receiver's URLs through apprise: the only module that imports it.

A receiver's URLs are secret references (or literals), resolved here at the point of use. They
never leave this module unmasked: results and errors name each URL by apprise's own
``url(privacy=True)`` less its path and query (``json://`` keeps a webhook token in its path
even there), and a filter on apprise's logger masks every URL apprise would log and every
fragment of a secret URL sent so far (its WARNINGs quote Slack tokens without a scheme).
Retrying belongs to the Prefect task layer, so a failed send is not an exception: it returns
``ok=False`` with the reason. Only configuration apprise cannot use raises DeliveryError.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

import apprise
from apprise import AppriseAsset, AppriseResultStatus, NotifyBase, NotifyFormat, NotifyResult

from lazarus.errors import DeliveryError, SecretError
from lazarus.notify.message import as_html
from lazarus.secrets import Secret, is_reference, resolve

_URL = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*)://[^\s'\"]+")
_HTTP_STATUS = re.compile(r"error=(\d{3})\b")
_FRAGMENT = re.compile(r"[^/:@?&=#,;]+")
# apprise's SMS services: one short text (lazarus.notify.message.short), not the markdown body
SMS_SCHEMES = frozenset(
    {"signal", "signals", "smseagle", "smseagles", "twilio", "sns", "clicksend", "d7sms",
     "bulksms", "vonage", "nexmo", "sinch", "plivo", "msg91", "messagebird", "httpsms", "seven"}
)  # fmt: skip
_ASSET = AppriseAsset(app_id="Lazarus", secure_logging=True, storage_mode="memory")


_SEEN_FRAGMENTS: set[str] = set()  # pieces of every secret URL resolved in this process


class _MaskUrls(logging.Filter):
    """apprise logs some URLs as given (``Unparseable URL …``) and some tokens bare: keep only
    the scheme of a URL, and mask every fragment of a secret URL this process resolved."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = _scrub(_URL.sub(r"\1://***", message), _SEEN_FRAGMENTS)
        if masked != message:
            record.msg, record.args = masked, None
        return True


class _NoDebug(logging.Filter):
    """urllib3 (under apprise's requests) logs each request path, webhook tokens included."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.DEBUG


logging.getLogger(apprise.LOGGER_NAME).addFilter(_MaskUrls())
logging.getLogger("urllib3.connectionpool").addFilter(_NoDebug())


class UrlResult(NamedTuple):
    """How one URL of a receiver fared; ``url`` is redacted."""

    url: str
    ok: bool
    error: str = ""


@dataclass(frozen=True)
class Delivery:
    """What one receiver made of one message; truthy when every URL accepted it."""

    receiver: str
    ok: bool
    per_url: tuple[UrlResult, ...]
    error: str = ""

    def __bool__(self) -> bool:
        return self.ok


def deliver(
    receiver_name: str,
    urls: Sequence[str],
    title: str,
    body: str,
    *,
    body_format: Literal["text", "markdown", "html"] = "markdown",
    timeout: float,
    short_body: str | None = None,
) -> Delivery:
    """Send ``title``/``body`` to every URL of one receiver, all within ``timeout`` seconds.

    SMS services (``SMS_SCHEMES``) get ``short_body`` alone instead, when it is given.

    Raises DeliveryError only when a URL cannot be resolved or apprise cannot use it.
    """
    if not urls:
        raise DeliveryError(receiver_name, "has no URLs to send to")
    secrets = [_resolve(receiver_name, position, ref) for position, ref in enumerate(urls, 1)]
    plugins = [
        _plugin(receiver_name, position, ref, secret, timeout)
        for position, (ref, secret) in enumerate(zip(urls, secrets, strict=True), 1)
    ]
    fragments = _secret_fragments(secrets, [shown(p.url(privacy=True)) for p in plugins])
    _SEEN_FRAGMENTS.update(fragments)
    sms = {i for i, secret in enumerate(secrets) if short_body is not None and _is_sms(secret)}
    html = {i for i, p in enumerate(plugins) if body_format == "markdown" and _shows_html(p)}
    batches = (
        ([p for i, p in enumerate(plugins) if i not in sms | html], title, body, body_format),
        ([p for i, p in enumerate(plugins) if i in html - sms], title, as_html(body), "html"),
        ([p for i, p in enumerate(plugins) if i in sms], "", short_body or "", "text"),
    )
    per_url: tuple[UrlResult, ...] = ()
    for batch, batch_title, text, text_format in batches:
        if not batch:
            continue
        notifier = apprise.Apprise(asset=_ASSET)
        for plugin in batch:
            notifier.add(plugin)
        with notifier.notify(
            body=text, title=batch_title, body_format=text_format, timeout=timeout
        ) as result:
            per_url += tuple(
                UrlResult(
                    shown(service.url),
                    bool(service),
                    "" if service else _scrub(_reason(service, timeout), fragments),
                )
                for service in result
            )
    failed = [f"{r.url.partition('?')[0]}: {r.error}" for r in per_url if not r.ok]
    ok = bool(per_url) and not failed
    return Delivery(receiver_name, ok, per_url, "; ".join(failed) if per_url else "nothing sent")


def shown(private_url: str) -> str:
    """How a URL is printed anywhere: apprise's privacy form without query and path."""
    scheme, _, rest = private_url.partition("://")
    host, _, path = rest.partition("?")[0].partition("/")
    return f"{scheme}://{host}/***" if path.strip("/") else f"{scheme}://{host}"


def _shows_html(plugin: NotifyBase) -> bool:
    """Whether the service renders HTML first (mail): it gets our escaped HTML, not apprise's
    markdown conversion, which passes raw HTML in the text through."""
    preferred = plugin.notify_format
    first = preferred[0] if isinstance(preferred, tuple | list) else preferred
    return first == NotifyFormat.HTML


def _is_sms(secret: Secret) -> bool:
    return secret.reveal().partition("://")[0].lower() in SMS_SCHEMES


def _resolve(receiver: str, position: int, ref: str) -> Secret:
    try:
        return resolve(ref)
    except SecretError as exc:
        raise DeliveryError(receiver, f"url #{position}: {exc}") from None


def _plugin(receiver: str, position: int, ref: str, secret: Secret, timeout: float) -> NotifyBase:
    """apprise's plugin for one URL, with socket timeouts bounded by ``timeout``."""
    raw = secret.reveal()
    try:
        plugin = apprise.Apprise.instantiate(raw, asset=_ASSET, suppress_exceptions=False)
        problem = "" if plugin else "apprise cannot parse it (unknown scheme or missing parts)"
    except Exception as exc:  # a plugin's constructor rejects its arguments
        plugin, problem = None, _scrub(_URL.sub(r"\1://***", str(exc)), _fragments(raw, ""))
    if plugin is None:
        named = f" ({ref})" if is_reference(ref) else ""
        scheme = raw.partition("://")[0] if "://" in raw else "?"
        raise DeliveryError(receiver, f"url #{position}{named} {scheme}://***: {problem}")
    plugin.socket_connect_timeout = plugin.socket_read_timeout = timeout
    return plugin


def _reason(service: NotifyResult, timeout: float) -> str:
    """Why apprise says one service failed, in the operator's words."""
    messages = [e.message for e in service.logs() if e.level in {"WARNING", "ERROR", "CRITICAL"}]
    text = " ".join(messages)
    status = _HTTP_STATUS.search(text)
    if status and int(status.group(1)) >= 400:
        return f"HTTP {status.group(1)}"
    # apprise words a socket timeout as a connection error; the time it took tells them apart
    if service.status == AppriseResultStatus.TIMEOUT or service.elapsed >= 0.95 * timeout:
        return f"no answer within {timeout:g}s"
    if "connection error" in text.lower():
        return "connection failed (refused, reset or unreachable)"
    return messages[-1] if messages else "apprise reported a failure without a reason"


def _secret_fragments(secrets: Sequence[Secret], redacted: Sequence[str]) -> set[str]:
    shown = " ".join(redacted)
    return {f for s in secrets for f in _fragments(s.reveal(), shown)}


def _fragments(raw: str, shown: str) -> set[str]:
    """Pieces of a raw URL (tokens, passwords, paths) that its redacted form does not show."""
    return {f for f in _FRAGMENT.findall(raw) if len(f) >= 4 and f not in shown}


def _scrub(text: str, fragments: set[str]) -> str:
    for fragment in sorted(fragments, key=len, reverse=True):
        text = text.replace(fragment, "***")
    return text
