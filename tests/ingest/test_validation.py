import math

import pytest

from metricstream.ingest.validation import EnvelopeError, validate_body

NOW = 1_800_000_000.0


def check(body: object, max_metrics: int = 10):
    return validate_body(body, now=NOW, max_metrics=max_metrics, max_future_seconds=600)


def test_it_normalises_a_valid_metric() -> None:
    result = check({"metrics": [{"name": "cpu", "value": 45, "labels": {"host": "web-1"}}]})
    assert result.errors == []
    assert result.metrics == [
        {"name": "cpu", "value": 45.0, "timestamp": NOW, "labels": {"host": "web-1"}}
    ]


def test_it_parses_rfc3339_and_unix_timestamps() -> None:
    result = check(
        {
            "metrics": [
                {"name": "a", "value": 1, "timestamp": "2027-01-15T08:00:00Z"},
                {"name": "b", "value": 1, "timestamp": "2027-01-15T10:00:00+02:00"},
                {"name": "c", "value": 1, "timestamp": 1_799_999_000.5},
            ]
        }
    )
    assert result.errors == []
    assert [m["timestamp"] for m in result.metrics] == [1_800_000_000.0] * 2 + [1_799_999_000.5]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "JSON object"),
        ({"data": []}, "JSON object"),
        ({"metrics": {}}, "must be an array"),
        ({"metrics": []}, "must not be empty"),
        ({"metrics": [{"name": "a", "value": 1}] * 11}, "at most 10"),
    ],
)
def test_it_rejects_a_bad_envelope(body: object, message: str) -> None:
    with pytest.raises(EnvelopeError, match=message):
        check(body)


@pytest.mark.parametrize(
    ("item", "field", "reason"),
    [
        ("cpu", "", "must be an object"),
        ({"value": 1}, "name", "is required"),
        ({"name": "9lives", "value": 1}, "name", "must match"),
        ({"name": "has space", "value": 1}, "name", "must match"),
        ({"name": "x" * 201, "value": 1}, "name", "longer than 200"),
        ({"name": "cpu"}, "value", "is required"),
        ({"name": "cpu", "value": "45"}, "value", "must be a number"),
        ({"name": "cpu", "value": True}, "value", "must be a number"),
        ({"name": "cpu", "value": math.inf}, "value", "must be finite"),
        ({"name": "cpu", "value": math.nan}, "value", "must be finite"),
        ({"name": "cpu", "value": 1, "timestamp": NOW + 601}, "timestamp", "in the future"),
        ({"name": "cpu", "value": 1, "timestamp": "yesterday"}, "timestamp", "not an RFC 3339"),
        (
            {"name": "cpu", "value": 1, "timestamp": "2027-01-15T08:00:00"},
            "timestamp",
            "UTC offset",
        ),
        ({"name": "cpu", "value": 1, "timestamp": -5}, "timestamp", "non-negative"),
        ({"name": "cpu", "value": 1, "labels": ["a"]}, "labels", "must be an object"),
        ({"name": "cpu", "value": 1, "labels": {"host": 1}}, "labels", "must be a string"),
        ({"name": "cpu", "value": 1, "labels": {"bad-key": "x"}}, "labels", "must match"),
        ({"name": "cpu", "value": 1, "labels": {"k": "v" * 257}}, "labels", "longer than 256"),
        (
            {"name": "cpu", "value": 1, "labels": {f"k{i}": "v" for i in range(17)}},
            "labels",
            "at most 16",
        ),
        ({"name": "cpu", "value": 1, "lables": {}}, "lables", "unknown field"),
    ],
)
def test_it_names_index_field_and_reason(item: object, field: str, reason: str) -> None:
    good = {"name": "ok", "value": 1}
    result = check({"metrics": [good, item]})
    assert result.errors, "expected a rejection"
    error = result.errors[0]
    assert (error.index, error.field) == (1, field)
    assert reason in error.reason


def test_it_reports_every_problem_of_a_batch() -> None:
    result = check({"metrics": [{"name": "", "value": "x"}, {"name": "ok", "value": 1}, {}]})
    assert [(e.index, e.field) for e in result.errors] == [
        (0, "name"),
        (0, "value"),
        (2, "name"),
        (2, "value"),
    ]
