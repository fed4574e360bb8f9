from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from metricstream.dashboard import views as dashboard

urlpatterns = [
    path("", dashboard.home, name="home"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("metricstream.ingest.urls")),
]
