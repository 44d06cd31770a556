"""The signed ack and silence links of messages, as `lazarus serve` answers them.

``GET /act/ack?...`` shows what the link would do and a form; only its ``POST`` acts, so a
mail scanner that fetches every link acknowledges nothing. The link is its own, narrow
authentication (lazarus.notify.links): one action on one incident, until it expires, used
once; a changed or expired link is refused (403) before anything is read. Every other route of
the server still needs the bearer token.
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable
from urllib.parse import parse_qs, urlencode

from lazarus.config import Config
from lazarus.errors import LazarusError
from lazarus.model import Incident
from lazarus.notify.announce import take
from lazarus.notify.escalation import AckInput
from lazarus.notify.links import ACTIONS, PATH, Action, LinkRefused, LinkSigner, Reach, use_once
from lazarus.notify.silences import add_silence
from lazarus.notify.state import NotifyState
from lazarus.secrets import resolve
from lazarus.store import Store
from lazarus.web import HttpError, Request, Response, WebServer

OnAck = Callable[[Incident, AckInput], None]
_WHAT = {"ack": "Acknowledge", "silence": "Silence"}


def signer_for(config: Config) -> LinkSigner | None:
    """The config's link signer (``server.links``), or None when links are not served."""
    if config.server is None or config.server.links is None:
        return None
    links = config.server.links
    host, port = config.server.address
    return LinkSigner(links.url or f"http://{host}:{port}", resolve(links.key), links.ttl)


def silence_for(config: Config) -> float:
    links = config.server.links if config.server else None
    return links.silence if links else 7200.0


def add_link_routes(
    server: WebServer, config: Config, store: Store, reach: Reach, on_ack: OnAck
) -> None:
    """GET (confirm page) and POST (act) for each action; ``on_ack`` emits the event."""
    signer = signer_for(config)
    if signer is None:
        return
    state = NotifyState(store)

    for action in ACTIONS:

        def signed(request: Request, action: Action = action) -> bool:
            try:
                signer.verify(action, request.query, time.time())
            except LinkRefused as exc:
                raise HttpError(403, str(exc)) from None
            return True

        def confirm(request: Request, action: Action = action) -> Response:
            incident = _incident(store, request)
            return Response(html=_confirm_page(action, incident, request, reach.silence_for))

        def act(request: Request, action: Action = action) -> Response:
            incident = _incident(store, request)
            form = parse_qs(request.body.decode("utf-8", "replace"))
            by = (form.get("by") or [""])[0].strip()
            comment = (form.get("comment") or [""])[0].strip()
            if not by:
                raise HttpError(400, "by: your name is required, for the record")
            now = time.time()
            try:
                use_once(store, action, incident.id, request.query["nonce"][0], now)
            except LinkRefused as exc:
                raise HttpError(409, str(exc)) from None
            if action == "ack":
                said = _ack(state, config, incident, by, comment, reach, on_ack, now)
            else:
                said = _silence(state, incident, by, comment, reach, now)
            return Response(html=_page(f"{_WHAT[action]}: done", said))

        path = PATH.format(action=action)
        server.route("GET", path, confirm, auth=signed)
        server.route("POST", path, act, auth=signed)


def _incident(store: Store, request: Request) -> Incident:
    try:
        return store.get(int(request.query["incident"][0]))
    except KeyError:
        raise HttpError(404, "no such incident in this store") from None


def _ack(
    state: NotifyState, config: Config, incident: Incident, by: str, comment: str, reach: Reach,
    on_ack: OnAck, now: float,
) -> str:  # fmt: skip
    try:
        ack = AckInput(acknowledged_by=by[:100], comment=comment[:500])
    except ValueError as exc:
        raise HttpError(400, f"the form: {exc}") from None
    taken = take(state, config.notify, incident.id, ack, reach, now)
    if taken is None:
        raise HttpError(409, f"incident #{incident.id} is {incident.state}: nothing to acknowledge")
    on_ack(taken[0], ack)
    missed = f" ({taken[1]} receiver(s) did not get the news)" if taken[1] else ""
    return f"Incident #{incident.id} is acknowledged by {by}; the team was told{missed}."


def _silence(
    state: NotifyState, incident: Incident, by: str, comment: str, reach: Reach, now: float
) -> str:
    seconds = reach.silence_for
    matchers = [f'{k}="{v}"' for k, v in _scope(incident).items()]
    try:
        silence = add_silence(
            state, matchers, starts_at=now, ends_at=now + seconds,
            comment=comment or f"from a link in incident #{incident.id}'s message", created_by=by,
        )  # fmt: skip
    except LazarusError as exc:
        raise HttpError(400, str(exc)) from None
    return (
        f"Silence #{silence.id} by {by} mutes {', '.join(matchers)} for {seconds / 3600:g}h."
        f" Expire it early: {reach.shell('silence expire', silence.id)}"
    )


def _scope(incident: Incident) -> dict[str, str]:
    """A silence link mutes this incident's target and symptom, nothing wider."""
    return {"host": incident.host, "service": incident.service, "symptom": incident.symptom}


def _confirm_page(action: Action, incident: Incident, request: Request, silence: float) -> str:
    what = (
        f"Acknowledge incident #{incident.id}: escalation and repeats stop, the team is told."
        if action == "ack"
        else f"Silence incident #{incident.id}'s alerts ({incident.target}, "
        f"{incident.symptom}) for {silence / 3600:g}h."
    )
    target = f"{request.path}?{urlencode({k: v[0] for k, v in request.query.items()})}"
    form = (
        f'<form method="post" action="{html.escape(target)}">'
        '<p><label>Your name <input name="by" required maxlength="100"></label></p>'
        '<p><label>Comment <input name="comment" maxlength="500"></label></p>'
        f'<p><button type="submit">{_WHAT[action]}</button></p></form>'
    )
    facts = (
        f"{incident.symptom} on {incident.target} ({incident.severity}), {incident.state}: "
        f"{incident.summary}"
    )
    return _page(f"{_WHAT[action]} #{incident.id}?", f"{facts}\n{what}", form)


def _page(title: str, text: str, form: str = "") -> str:
    paragraphs = "".join(f"<p>{html.escape(line)}</p>" for line in text.splitlines())
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;max-width:40em;margin:2em auto}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{paragraphs}{form}</body></html>"
    )
