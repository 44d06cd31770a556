"""What a step can see and use while it runs; the engine builds one per step."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lazarus.config import Config, Database, Host, PlaybookSettings, Service
from lazarus.errors import ActionError
from lazarus.model import Incident
from lazarus.remote import Executor


@dataclass
class StepContext:
    """The incident, the fleet config, the transport and the injectable clock of one run."""

    incident: Incident
    config: Config | None = None
    settings: PlaybookSettings | None = None  # None: the config's playbooks section
    executor: Executor | None = None
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.time
    notify: Callable[[str], None] | None = None
    run_playbook: Callable[[str], Any] | None = None
    step_id: str = ""
    timeout: float | None = None
    memory: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.settings is None:
            self.settings = self.config.playbooks if self.config else PlaybookSettings()

    def fail(self, message: str) -> ActionError:
        return ActionError(self.step_id, message)

    def host(self, name: str | None = None) -> Host:
        name = name or self.incident.host
        for host in self.config.inventory.hosts if self.config else []:
            if host.name == name:
                return host
        raise self.fail(f"host {name!r} is not in the inventory")

    def service(self, name: str | None = None) -> Service:
        """A service of the inventory, or a database as the service it is to the watch."""
        name = name or self.incident.service
        try:
            if self.config is not None:
                return self.config.inventory.service(name)
        except KeyError:
            pass
        raise self.fail(f"service {name!r} is not in the inventory")

    def database(self, name: str) -> Database:
        for db in self.config.inventory.databases if self.config else []:
            if db.name == name:
                return db
        raise self.fail(f"database {name!r} is not in the inventory")

    def clean_paths(self, host: str) -> list[str]:
        """Folders disk.clean may empty on ``host``: the playbooks', the host's and those of the
        services it runs, ``{host}`` filled. Only the inventory names them, never a label."""
        if self.config is None:
            return list(self.settings.clean_paths)
        inv = self.config.inventory
        found = self.host(host)
        paths = [*self.settings.clean_paths, *found.clean_paths]
        paths += [p for s in inv.services if found in inv.hosts_of(s) for p in s.clean_paths]
        return list(dict.fromkeys(p.replace("{host}", host) for p in paths))

    def remote(self) -> Executor:
        if self.executor is None:
            raise self.fail("no executor: this step needs SSH")
        return self.executor

    def facts(self) -> dict[str, str]:
        """What ``when:`` matchers see: the service's labels, then the incident's facts."""
        services = self.config.inventory.services if self.config else []
        labels = next((s.labels for s in services if s.name == self.incident.service), {})
        return {**labels, **self.incident.facts()}

    def scope(self) -> dict[str, Any]:
        """Names templates may use: incident.*, service.*, host.*, steps.<id>.* (what an earlier
        step of this run reported, e.g. ``steps.clean.freed``)."""
        inc = self.incident
        scope: dict[str, Any] = {
            "incident": {
                "id": inc.id,
                "host": inc.host,
                "service": inc.service,
                "symptom": inc.symptom,
                "severity": inc.severity,
                "target": inc.target,
                "labels": dict(inc.labels),
            },
            "steps": self.memory.get("steps", {}),
        }
        if self.config is not None:
            with contextlib.suppress(KeyError):
                scope["service"] = self.config.inventory.service(inc.service).model_dump()
            hosts = [h for h in self.config.inventory.hosts if h.name == inc.host]
            if hosts:
                scope["host"] = hosts[0].model_dump()
        return scope
