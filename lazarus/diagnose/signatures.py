"""Known failure signatures: a regex over log lines and/or an incident's summary -> a cause.

The shipped set is ``signatures.yaml`` beside this module (OOM killer, disk full, connection
refused, too many open files, expired certificate). The file loads through lazarus.yamlfile
like a playbook, so an unknown key or a regex that does not compile fails with
``signatures.yaml:12: signatures[1].pattern: ...``.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from lazarus.config import Name
from lazarus.yamlfile import Located, read_yaml, validate

DEFAULT_PATH = Path(__file__).with_name("signatures.yaml")

Scope = Literal["logs", "summary"]


@lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


def _regex(value: str | None) -> str | None:
    if value is not None:
        try:
            _compiled(value)
        except re.error as exc:
            raise ValueError(f"not a valid regex: {exc}") from None
    return value


class Signature(BaseModel):
    """One failure mode: ``pattern`` found in a place named by ``scope`` suggests ``cause``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    cause: Name = Field(description='the cause playbooks match on: cause="disk_full"')
    description: str = ""
    pattern: str = Field(min_length=1)
    unless: str | None = Field(None, description="a line this also matches is a near-miss")
    scope: list[Scope] = Field(["logs"], min_length=1)
    confidence: float = Field(ge=0.0, le=1.0)

    _check_pattern = field_validator("pattern", "unless")(_regex)

    def search(self, text: str) -> str | None:
        """The matched part of ``text``, or None (also None when ``unless`` matches)."""
        found = _compiled(self.pattern).search(text)
        if found is None or (self.unless and _compiled(self.unless).search(text)):
            return None
        return found.group(0)


class SignatureFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1]
    signatures: list[Signature] = Field(min_length=1)

    @field_validator("signatures")
    @classmethod
    def _unique(cls, signatures: list[Signature]) -> list[Signature]:
        seen: set[str] = set()
        for i, signature in enumerate(signatures):
            if signature.name in seen:
                raise Located(f"duplicate signature name {signature.name!r}", (i, "name"))
            seen.add(signature.name)
        return signatures


def load_signatures(path: str | Path = DEFAULT_PATH) -> list[Signature]:
    """The signatures of a file (the shipped set by default); ConfigErrorGroup when invalid."""
    path = Path(path)
    data, lines = read_yaml(path)
    return validate(SignatureFile, data, lines, path).signatures
