"""Metricstream: watch a multi-tenant metrics platform live."""

from metricstream.celery import app as celery_app

__all__ = ["celery_app"]
