"""Fixtures: two tenants with their operators (alice, bob) and real server processes."""

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection
from django.test import Client

from metricstream.celery import app as celery_app
from metricstream.tenants.models import Tenant
from metricstream.tenants.services import create_operator, create_tenant, grant
from tests.support import Process, Server, base_env, start_server, start_worker

PASSWORD = "correct horse battery staple"


@dataclass
class Operator:
    """A tenant, its ingest token, and an operator who is a member of it."""

    email: str
    user: AbstractBaseUser
    tenant: Tenant
    token: str

    def session_cookie(self) -> dict[str, str]:
        client = Client()
        client.force_login(self.user)
        return {settings.SESSION_COOKIE_NAME: client.cookies[settings.SESSION_COOKIE_NAME].value}


def make_operator(name: str) -> Operator:
    email = f"{name}@example.com"
    user = create_operator(email, PASSWORD)
    tenant, issued = create_tenant(f"{name.title()} Inc")
    grant(user, tenant.pk)
    return Operator(email=email, user=user, tenant=tenant, token=issued.token)


@pytest.fixture
def alice(db: None) -> Operator:
    return make_operator("alice")


@pytest.fixture
def bob(db: None) -> Operator:
    return make_operator("bob")


@pytest.fixture
def eager_jobs() -> Iterator[None]:
    """Run ProcessMetricSubmission in the test's own process, as the embedded default does."""
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


@pytest.fixture(scope="session")
def services_env(django_db_setup: None, django_db_blocker: object) -> dict[str, str]:
    """Environment for server and worker processes sharing the test database and Redis."""
    db = connection.settings_dict
    assert settings.REDIS_URL, "REDIS_URL must point at a real Redis (see the Makefile)"
    assert db["ENGINE"].endswith("postgresql"), "DATABASE_URL must point at PostgreSQL"
    url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    return base_env(
        DATABASE_URL=url,
        REDIS_URL=settings.REDIS_URL,
        SECRET_KEY=settings.SECRET_KEY,
        METRICSTREAM_QUEUE=f"test-{uuid.uuid4()}",
        LOG_LEVEL="INFO",
    )


@pytest.fixture(scope="session")
def server(
    services_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("server") / "server.log"
    proc = start_server(services_env, log)
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def worker(
    services_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Process]:
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    proc = start_worker(services_env, log)
    yield proc
    proc.stop()


@pytest.fixture
def staff_cookie(transactional_db: None) -> dict[str, str]:
    user = create_operator("ops@example.com", PASSWORD, staff=True)
    client = Client()
    client.force_login(user)
    return {settings.SESSION_COOKIE_NAME: client.cookies[settings.SESSION_COOKIE_NAME].value}


def stream_status(server: Server, cookie: dict[str, str]) -> dict:
    response = httpx.get(server.base + "/api/v1/stream/status", cookies=cookie, timeout=5)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def tmp_cwd(tmp_path: Path) -> Path:
    return tmp_path
