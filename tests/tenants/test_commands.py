import io
import json
import uuid
from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from metricstream.tenants.models import IngestToken, Membership, Tenant
from metricstream.tenants.selectors import tenant_for_token
from tests.conftest import Operator
from tests.support import base_env, metricstream

pytestmark = pytest.mark.django_db


def run(*args: str, stdin: str = "") -> str:
    out = io.StringIO()
    with mock.patch("sys.stdin", io.StringIO(stdin)):
        call_command(*args, stdout=out)
    return out.getvalue()


def test_it_creates_a_tenant_with_a_working_token(alice: Operator, bob: Operator) -> None:
    created = json.loads(run("tenant", "create", "Carol Corp", "--json"))

    tenant = Tenant.objects.get(pk=created["id"])
    assert created["name"] == tenant.name == "Carol Corp"
    assert tenant_for_token(created["token"]) == tenant
    # Only the digest is stored, never the token itself.
    assert not IngestToken.objects.filter(digest=created["token"]).exists()
    assert created["token"] not in IngestToken.objects.get(tenant=tenant).digest


def test_it_issues_lists_and_revokes_tokens(alice: Operator, bob: Operator) -> None:
    issued = json.loads(run("token", "create", str(alice.tenant.pk), "--json"))
    assert tenant_for_token(issued["token"]) == alice.tenant
    listed = json.loads(run("token", "list", str(alice.tenant.pk), "--json"))
    assert len(listed) == 2

    run("token", "revoke", str(alice.tenant.pk), issued["token"][:10])

    assert tenant_for_token(issued["token"]) is None
    assert tenant_for_token(alice.token) == alice.tenant
    assert tenant_for_token(bob.token) == bob.tenant


def test_it_creates_an_operator_and_grants_a_tenant(alice: Operator, bob: Operator) -> None:
    run("user", "create", "Carol@Example.com", "--password-stdin", stdin="s3cret-pass\n")
    run("grant", "carol@example.com", str(bob.tenant.pk))

    carol = get_user_model().objects.get(username="carol@example.com")
    assert carol.check_password("s3cret-pass")
    assert list(Membership.objects.filter(user=carol).values_list("tenant", flat=True)) == [
        bob.tenant.pk
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("tenant", "create", "  "), "must not be empty"),
        (("token", "create", "nope"), "is not a tenant id"),
        (("token", "create", str(uuid.UUID(int=1))), "no tenant with id"),
        (("user", "create", "not-an-email", "--password", "long-enough"), "not an email"),
        (("user", "create", "alice@example.com", "--password", "long-enough"), "already exists"),
        (("user", "create", "dave@example.com", "--password", "short"), "too short"),
        (("grant", "nobody@example.com", str(uuid.UUID(int=1))), "no operator"),
    ],
)
def test_it_explains_bad_arguments(
    alice: Operator, bob: Operator, args: tuple[str, ...], message: str
) -> None:
    with pytest.raises(CommandError, match=message):
        run(*args)


def test_it_lists_its_commands_in_help() -> None:
    result = metricstream("--help", env=base_env())

    for command in ("migrate", "serve", "worker", "tenant", "token", "user", "grant", "demo"):
        assert f"  {command} " in result.stdout


def test_it_fails_with_one_clear_line_and_a_non_zero_exit(tmp_path) -> None:
    unknown = metricstream("frobnicate", env=base_env(), check=False)
    assert unknown.returncode == 2
    assert unknown.stderr.strip() == (
        "metricstream: unknown command 'frobnicate'; see `metricstream --help`"
    )

    unmigrated = metricstream("tenant", "list", env=base_env(), cwd=tmp_path, check=False)
    assert unmigrated.returncode == 2
    assert unmigrated.stderr.strip() == (
        "metricstream: the database schema is not up to date; run `metricstream migrate` first"
    )

    metricstream("migrate", env=base_env(), cwd=tmp_path)
    bad = metricstream("grant", "x@example.com", "nope", env=base_env(), cwd=tmp_path, check=False)
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines() == ["CommandError: 'nope' is not a tenant id (a UUID)"]


def test_it_refuses_a_misconfigured_environment(tmp_path) -> None:
    result = metricstream(
        "migrate", env=base_env(STREAM_HEARTBEAT_SECONDS="soon"), cwd=tmp_path, check=False
    )

    assert result.returncode == 2
    assert result.stderr.strip() == (
        "metricstream: configuration error: STREAM_HEARTBEAT_SECONDS='soon' is not a number"
    )
