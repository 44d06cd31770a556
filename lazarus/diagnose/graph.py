"""Which services need which, from the config: the map diagnosis walks upstream along.

Edges come from ``Service.depends_on`` and, for configs written before it, from the label
``depends_on`` the shipped service-unhealthy playbook reads (comma-separated names). Names that
are no service of the inventory (an external API) stay in the graph as leaves: an incident can
not be on them, but a log line can name them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from lazarus.config import Config


@dataclass(frozen=True)
class DependencyGraph:
    """``needs[service]``: what it depends on; ``aliases[service]``: names a log line may use."""

    needs: Mapping[str, tuple[str, ...]]
    aliases: Mapping[str, frozenset[str]]

    @classmethod
    def of(cls, config: Config) -> DependencyGraph:
        inventory = config.inventory
        needs: dict[str, tuple[str, ...]] = {}
        aliases: dict[str, frozenset[str]] = {}
        for service in inventory.services:
            labelled = re.split(r"[,\s]+", service.labels.get("depends_on", "").strip())
            needs[service.name] = tuple(
                dict.fromkeys([*service.depends_on, *filter(None, labelled)])
            )
            hosts = inventory.hosts_of(service)
            names = {service.name, *(h.name for h in hosts), *(h.address for h in hosts)}
            aliases[service.name] = frozenset(names)
        return cls(needs, aliases)

    def upstream(self, service: str) -> dict[str, int]:
        """Every service ``service`` needs, directly (1) or through others (2, 3 …); cycles end."""
        distance: dict[str, int] = {}
        frontier, hops = [service], 0
        while frontier:
            hops += 1
            following = []
            for name in frontier:
                for dep in self.needs.get(name, ()):
                    if dep != service and dep not in distance:
                        distance[dep] = hops
                        following.append(dep)
            frontier = following
        return distance

    def named_in(self, text: str, candidates: list[str]) -> str | None:
        """The first of ``candidates`` whose name, host or address appears in ``text``."""
        for service in candidates:
            for alias in sorted(self.aliases.get(service, frozenset({service}))):
                if re.search(rf"(?<![\w.-]){re.escape(alias)}(?![\w-])", text):
                    return service
        return None
