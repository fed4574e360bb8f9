from django.urls import path

from metricstream.ingest import views

urlpatterns = [path("metrics", views.submit_metrics, name="ingest-metrics")]
