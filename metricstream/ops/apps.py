from django.apps import AppConfig


class OpsConfig(AppConfig):
    """Running Metricstream: the server, the worker and the demo."""

    name = "metricstream.ops"
