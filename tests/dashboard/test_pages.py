import pytest
from django.test import Client

from tests.conftest import PASSWORD, Operator

pytestmark = pytest.mark.django_db


def test_it_logs_an_operator_in_with_email_and_password(alice: Operator, bob: Operator) -> None:
    client = Client()
    response = client.post("/login/", {"username": alice.email, "password": PASSWORD})

    assert response.status_code == 302
    assert response["Location"] == "/"
    assert client.session["_auth_user_id"] == str(alice.user.pk)


def test_it_refuses_a_wrong_password(alice: Operator, bob: Operator) -> None:
    response = Client().post("/login/", {"username": alice.email, "password": "wrong"})

    assert response.status_code == 200
    assert b"Please enter a correct username and password" in response.content


def test_it_lists_only_the_operators_own_tenants(alice: Operator, bob: Operator) -> None:
    client = Client()
    client.force_login(alice.user)

    page = client.get("/").content.decode()

    assert str(alice.tenant.pk) in page
    assert str(bob.tenant.pk) not in page


def test_it_sends_anonymous_visitors_to_the_login_page(alice: Operator, bob: Operator) -> None:
    response = Client().get("/")

    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/"


def test_it_logs_out_with_a_post(alice: Operator, bob: Operator) -> None:
    client = Client()
    client.force_login(alice.user)

    response = client.post("/logout/")

    assert response.status_code == 302
    assert "_auth_user_id" not in client.session
