"""The webhook bodies Alertmanager (version 4) and Grafana's unified alerting send.

Both carry a list of alerts with ``status``, ``labels``, ``annotations``, ``startsAt`` and a
``fingerprint``; Grafana adds ``orgId``, ``title`` and more, which are ignored. A body that does
not fit answers 400 with the field that is wrong (``alerts.0.labels: Field required``).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lazarus.web import HttpError


class Alert(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    status: Literal["firing", "resolved"]
    labels: dict[str, str] = Field(min_length=1)
    annotations: dict[str, str] = {}
    startsAt: datetime
    fingerprint: str = ""

    @property
    def key(self) -> str:
        """The sender's fingerprint, or (an old sender without one) a hash of the labels."""
        if self.fingerprint:
            return self.fingerprint
        text = "\0".join(f"{k}={v}" for k, v in sorted(self.labels.items()))
        return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


class AlertmanagerPayload(BaseModel):
    model_config = ConfigDict(extra="ignore")

    version: Literal["4"]
    receiver: str = ""
    alerts: list[Alert]


class GrafanaPayload(BaseModel):
    model_config = ConfigDict(extra="ignore")

    receiver: str = ""
    orgId: int = 0
    alerts: list[Alert]


def parse(model: type[AlertmanagerPayload | GrafanaPayload], data: Any) -> list[Alert]:
    """The alerts of one webhook body; HttpError 400 naming the first wrong field."""
    try:
        return model.model_validate(data).alerts
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise HttpError(400, f"{where}: {first['msg']}") from None
