from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from metricstream.dashboard import views as dashboard

urlpatterns = [
    path("", dashboard.home, name="home"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("tenants/<uuid:tenant_id>/", dashboard.live, name="live"),
    path("tenants/<uuid:tenant_id>/tokens/", dashboard.tokens, name="tokens"),
    path(
        "tenants/<uuid:tenant_id>/tokens/<int:token_id>/revoke/",
        dashboard.revoke,
        name="revoke-token",
    ),
    path("admin/", admin.site.urls),
    path("api/v1/tenants/<str:tenant_id>/metrics", dashboard.history, name="history"),
    path("api/v1/", include("metricstream.ingest.urls")),
]
