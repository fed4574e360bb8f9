import re

import pytest
from django.test import Client

from metricstream.tenants.models import IngestToken
from metricstream.tenants.selectors import tenant_for_token
from tests.conftest import Operator

pytestmark = pytest.mark.django_db


def client_for(operator: Operator) -> Client:
    client = Client()
    client.force_login(operator.user)
    return client


def test_it_creates_a_token_and_shows_it_once(alice: Operator, bob: Operator) -> None:
    client = client_for(alice)

    page = client.post(f"/tenants/{alice.tenant.pk}/tokens/").content.decode()

    token = re.search(r'id="issued-token">([^<]+)<', page).group(1)
    assert tenant_for_token(token) == alice.tenant
    assert token not in client.get(f"/tenants/{alice.tenant.pk}/tokens/").content.decode()


def test_it_revokes_a_token(alice: Operator, bob: Operator) -> None:
    record = IngestToken.objects.get(tenant=alice.tenant)

    response = client_for(alice).post(f"/tenants/{alice.tenant.pk}/tokens/{record.pk}/revoke/")

    assert response.status_code == 302
    assert tenant_for_token(alice.token) is None


def test_it_keeps_bob_away_from_alices_tokens(alice: Operator, bob: Operator) -> None:
    record = IngestToken.objects.get(tenant=alice.tenant)
    client = client_for(bob)

    assert client.get(f"/tenants/{alice.tenant.pk}/tokens/").status_code == 403
    assert client.post(f"/tenants/{alice.tenant.pk}/tokens/").status_code == 403
    assert client.post(f"/tenants/{alice.tenant.pk}/tokens/{record.pk}/revoke/").status_code == 403
    assert tenant_for_token(alice.token) == alice.tenant
    assert IngestToken.objects.filter(tenant=alice.tenant).count() == 1


def test_it_shows_each_tenants_latest_activity(alice: Operator, bob: Operator) -> None:
    from tests.support import store

    store(alice.tenant.pk, [{"name": "cpu", "value": 1.0, "timestamp": 1.0, "labels": {}}])

    page = client_for(alice).get("/").content.decode()

    assert "Last batch" in page and "1 batch" in page
    assert client_for(bob).get("/").content.decode().count("No metrics yet") == 1
