"""The operator's pages (tenants, live view, ingest tokens) and the history the live view loads."""

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from metricstream.dashboard import selectors
from metricstream.http import json_error
from metricstream.tenants.models import IngestToken, Tenant
from metricstream.tenants.selectors import is_member
from metricstream.tenants.services import issue_token, revoke_token

WINDOWS = {"5m": 300, "15m": 900, "1h": 3600}
DEFAULT_WINDOW = "15m"


@login_required
def home(request: HttpRequest) -> HttpResponse:
    tenants = selectors.tenants_with_activity(request.user)
    return render(request, "dashboard/home.html", {"tenants": tenants})


def _member_tenant(request: HttpRequest, tenant_id: uuid.UUID) -> Tenant | None:
    if not is_member(request.user.pk, tenant_id):
        return None
    return Tenant.objects.filter(pk=tenant_id).first()


def _forbidden(request: HttpRequest) -> HttpResponse:
    return render(request, "dashboard/forbidden.html", status=403)


@login_required
@require_GET
def live(request: HttpRequest, tenant_id: uuid.UUID) -> HttpResponse:
    tenant = _member_tenant(request, tenant_id)
    if tenant is None:
        return _forbidden(request)
    return render(
        request,
        "dashboard/live.html",
        {"tenant": tenant, "windows": WINDOWS, "default_window": DEFAULT_WINDOW},
    )


@login_required
def tokens(request: HttpRequest, tenant_id: uuid.UUID) -> HttpResponse:
    tenant = _member_tenant(request, tenant_id)
    if tenant is None:
        return _forbidden(request)
    issued = None
    if request.method == "POST":
        issued = issue_token(tenant).token
    return render(
        request,
        "dashboard/tokens.html",
        {"tenant": tenant, "tokens": tenant.tokens.all(), "issued": issued},
    )


@login_required
@require_POST
def revoke(request: HttpRequest, tenant_id: uuid.UUID, token_id: int) -> HttpResponse:
    tenant = _member_tenant(request, tenant_id)
    if tenant is None:
        return _forbidden(request)
    token = get_object_or_404(IngestToken, pk=token_id, tenant=tenant)
    revoke_token(token)
    messages.success(request, f"Token {token.prefix}… revoked.")
    return redirect("tokens", tenant_id=tenant.pk)


@require_GET
def history(request: HttpRequest, tenant_id: str) -> JsonResponse:
    """GET /api/v1/tenants/{id}/metrics?window=15m[&cursor=…]: session auth, as the stream."""
    if not request.user.is_authenticated:
        return json_error(401, "unauthenticated", "Log in to read metrics.")
    try:
        tenant = uuid.UUID(tenant_id)
    except ValueError:
        return json_error(404, "not_found", "No such tenant: the id is not a UUID.")
    if not is_member(request.user.pk, tenant):
        return json_error(
            403, "forbidden", "You are not a member of this tenant, or it does not exist."
        )
    window = request.GET.get("window", DEFAULT_WINDOW)
    if window not in WINDOWS:
        return json_error(400, "bad_request", f"window must be one of {', '.join(WINDOWS)}.")
    try:
        cursor = selectors.Cursor.decode(request.GET["cursor"]) if "cursor" in request.GET else None
    except ValueError:
        return json_error(400, "bad_request", "cursor is not one this endpoint returned.")
    return JsonResponse(selectors.history(tenant, window_seconds=WINDOWS[window], cursor=cursor))
