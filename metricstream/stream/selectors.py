"""Who may open a stream: Django's own session and the tenant membership, read once at connect."""

import enum
import uuid
from importlib import import_module
from types import SimpleNamespace

from django.conf import settings
from django.contrib.auth import get_user
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import close_old_connections

from metricstream.tenants.selectors import is_member


class Access(enum.Enum):
    GRANTED = "granted"
    ANONYMOUS = "anonymous"
    FORBIDDEN = "forbidden"


def session_user(session_key: str | None) -> AbstractBaseUser | AnonymousUser:
    """The user of a Django session cookie, verified as Django's auth middleware does."""
    # The stream app runs outside Django's request cycle, which would otherwise
    # retire stale or broken connections.
    close_old_connections()
    if not session_key:
        return AnonymousUser()
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    return get_user(SimpleNamespace(session=store))


def stream_access(session_key: str | None, tenant_id: uuid.UUID) -> Access:
    user = session_user(session_key)
    if not user.is_authenticated:
        return Access.ANONYMOUS
    # The same answer whether or not the tenant exists: ids are not probed.
    return Access.GRANTED if is_member(user.pk, tenant_id) else Access.FORBIDDEN
