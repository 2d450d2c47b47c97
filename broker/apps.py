from django.apps import AppConfig


class BrokerConfig(AppConfig):
    name = "broker"
    verbose_name = "Broker"

    def ready(self) -> None:
        """Plug the broker into meshes/ from above: its event listeners and its presence read."""
        from broker import selectors
        from broker.events import LISTENERS, session_kick
        from meshes.events import subscribe
        from meshes.online import provide_online_peers, provide_session_kick

        for kind, listener in LISTENERS.items():
            subscribe(kind, listener)
        provide_online_peers(selectors.online_peers)
        provide_session_kick(session_kick)
