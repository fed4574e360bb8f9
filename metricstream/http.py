"""JSON error bodies, one shape for every endpoint: {"error": code, "message": text, ...}."""

from typing import Any

from django.http import JsonResponse


def json_error(status: int, code: str, message: str, **extra: Any) -> JsonResponse:
    return JsonResponse({"error": code, "message": message, **extra}, status=status)
