"""Alerts from a team's existing Alertmanager or Grafana, taken in as Lazarus incidents.

``payload`` reads the webhook bodies, ``targets`` resolves an alert's labels to the inventory,
``intake`` opens, deduplicates and resolves the incidents, ``routes`` puts it on the web server.
"""
