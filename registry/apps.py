from django.apps import AppConfig


class RegistryConfig(AppConfig):
    name = "registry"
    verbose_name = "Model registry"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported here, as Django documents, because these modules import models.
        from registry.access import accounts, audit
        from registry.reads import cache

        audit.register_models()
        cache.connect_invalidation()
        accounts.connect_access_invalidation()
