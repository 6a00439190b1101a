"""The canonical incident keeps CAP 1.2's names, formats and rules."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from hub.model.envelope import Lane
from hub.model.incident import Incident, Status, lane_for, parse_circle, parse_polygon
from tests.factories import cap


def test_the_jinze_example_validates_and_keeps_cap_names() -> None:
    incident = Incident.model_validate(cap("a1"))
    dumped = incident.model_dump(mode="json", exclude_none=True)
    assert dumped["msgType"] == "Alert"
    assert dumped["info"][0]["area"][0]["areaDesc"] == "青浦区金泽镇太浦河段"
    assert incident.info[0].area[0].circles() == [(31.03, 120.90, 2.0)]
    assert incident.key == "310118,a1"


def test_round_trip_through_json_is_lossless() -> None:
    message = cap(
        "a2",
        code=["IPAWSv1.0"],
        note="演练备注",
        incidents="310118,a0",
    )
    message["info"][0].update(
        {
            "responseType": ["Monitor", "Avoid"],
            "eventCode": [{"valueName": "GB/T 35561", "value": "03A01"}],
            "parameter": [{"valueName": "pollutant", "value": "苯"}],
            "resource": [
                {
                    "resourceDesc": "现场照片",
                    "mimeType": "image/jpeg",
                    "uri": "https://x.invalid/a.jpg",
                }
            ],
            "expires": "2026-07-01T20:30:00+08:00",
        }
    )
    message["info"][0]["area"][0]["polygon"] = ["31.0,120.8 31.1,120.8 31.1,120.9 31.0,120.8"]
    message["info"][0]["area"][0]["geocode"] = [{"valueName": "GB/T 2260", "value": "310118"}]
    incident = Incident.model_validate(message)
    again = Incident.model_validate_json(incident.model_dump_json(exclude_none=True))
    assert again == incident


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"sent": "2026-07-01T08:30:00Z"}, "sent"),
        ({"sent": "yesterday"}, "sent"),
        ({"status": "Real"}, "status"),
        ({"identifier": "has space"}, "identifier"),
        ({"msgType": "Update"}, "references"),
        ({"scope": "Restricted"}, "restriction"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_cap_rules_are_enforced(change: dict[str, object], field: str) -> None:
    message = cap("a3")
    message.update(change)
    with pytest.raises(ValidationError) as err:
        Incident.model_validate(message)
    assert field in str(err.value)


def test_geometry_formats() -> None:
    assert parse_circle("31.03,120.90 2") == (31.03, 120.90, 2.0)
    with pytest.raises(ValueError, match="lat,lon"):
        parse_circle("31.03 120.90 2")
    with pytest.raises(ValueError, match="first point"):
        parse_polygon("31,120 31,121 32,121 32,120")
    with pytest.raises(ValueError, match="WGS-84"):
        parse_polygon("91,120 31,121 32,121 91,120")
    message = cap("a4", circle="31.03,120.90 -1")
    with pytest.raises(ValidationError, match="radius"):
        Incident.model_validate(message)


def test_references_are_parsed() -> None:
    incident = Incident.model_validate(
        cap("u1", msg_type="Update", references="310118,a1,2026-07-01T08:30:00+08:00")
    )
    (ref,) = incident.referenced()
    assert (ref.sender, ref.identifier) == ("310118", "a1")
    with pytest.raises(ValidationError, match="sender,identifier,sent"):
        Incident.model_validate(cap("u2", msg_type="Update", references="310118-a1"))


def test_status_maps_to_lane() -> None:
    assert lane_for(Status.ACTUAL) is Lane.ACTUAL
    assert lane_for(Status.EXERCISE) is Lane.EXERCISE
    assert lane_for(Status.DRAFT) is Lane.TEST
