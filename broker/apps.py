from django.apps import AppConfig


class BrokerConfig(AppConfig):
    name = "broker"
    verbose_name = "Broker"

    def ready(self) -> None:
        from broker.events import on_mesh_event
        from meshes.events import subscribe

        subscribe(on_mesh_event)
