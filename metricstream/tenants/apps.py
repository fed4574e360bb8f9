from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "metricstream.tenants"
    default_auto_field = "django.db.models.BigAutoField"
