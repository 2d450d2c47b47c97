from django.apps import AppConfig


class MeshesConfig(AppConfig):
    name = "meshes"
    verbose_name = "Meshes"
