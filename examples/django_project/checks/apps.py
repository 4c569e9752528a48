from __future__ import annotations

from django.apps import AppConfig


class ChecksConfig(AppConfig):
    name = "checks"

    def ready(self) -> None:
        # The Client is made on first use (checks.client.get_client), so
        # management commands that never check a number need no AppCode.
        # Here we only hook up its life cycle.
        from django.core.signals import setting_changed

        from . import client

        setting_changed.connect(client.on_setting_changed)
