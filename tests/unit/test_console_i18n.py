"""The console's two language catalogues: the same keys, every key the pages use present, every
value of a translated vocabulary (task states, CAP severities and categories...) translated."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from hub.console.routes.tasks import Answer
from hub.model.approvals import ApprovalState, OnExpiry
from hub.model.envelope import Lane
from hub.model.events import EVENT_TYPES
from hub.model.region import CAP_CATEGORIES
from hub.model.task import TaskState
from hub.registry.holds import HoldState

WEB = Path(__file__).resolve().parents[2] / "hub" / "console" / "web"
LANGUAGES = ("zh-CN", "en")


def catalogue(lang: str) -> dict[str, str]:
    data: dict[str, str] = json.loads((WEB / "i18n" / f"{lang}.json").read_text("utf-8"))
    return data


def used_keys() -> set[str]:
    """Keys named in the page (data-i18n*) and string literals of the scripts that look like a
    catalogue key (a known prefix, a dot, a name); event type names are not keys."""
    prefixes = {key.split(".")[0] for key in catalogue("en")}
    keys = set(re.findall(r'data-i18n(?:-aria)?="([^"]+)"', (WEB / "index.html").read_text()))
    literal = re.compile(r"""["']([a-z]+\.[A-Za-z_]+)["']""")
    for script in WEB.glob("*.js"):
        for found in literal.findall(script.read_text("utf-8")):
            if found.split(".")[0] in prefixes and found not in EVENT_TYPES:
                keys.add(found)
    return keys


def test_both_catalogues_have_the_same_keys() -> None:
    zh, en = catalogue("zh-CN"), catalogue("en")
    assert sorted(set(zh) - set(en)) == [] and sorted(set(en) - set(zh)) == []
    assert all(v.strip() for v in zh.values()) and all(v.strip() for v in en.values())


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_key_the_pages_use_exists(lang: str) -> None:
    keys = used_keys()
    assert len(keys) > 100  # the scan found the pages' keys, not nothing
    assert sorted(keys - set(catalogue(lang))) == []


@pytest.mark.parametrize("lang", LANGUAGES)
def test_translated_vocabularies_are_complete(lang: str) -> None:
    have = set(catalogue(lang))
    wanted = (
        {f"state.{s.value}" for s in TaskState}
        | {f"severity.{s}" for s in ("Extreme", "Severe", "Moderate", "Minor", "Unknown")}
        | {f"category.{c}" for c in CAP_CATEGORIES}
        | {f"msg.{m}" for m in ("Alert", "Update", "Cancel", "Ack", "Error")}
        | {f"lane.{lane.value}" for lane in Lane}
        | {f"hold.{h.value}" for h in HoldState}
        | {f"answer.{a.value}" for a in Answer}
        | {f"role.{r}" for r in ("officer", "coordinator", "admin", "adapter")}
        | {f"approval.{a.value}" for a in ApprovalState}
        | {f"approvals.on_expiry.{o.value}" for o in OnExpiry}
    )
    assert sorted(wanted - have) == []


def test_placeholders_agree_between_languages() -> None:
    zh, en = catalogue("zh-CN"), catalogue("en")
    for key, text in zh.items():
        assert set(re.findall(r"\{(\w+)\}", text)) == set(re.findall(r"\{(\w+)\}", en[key])), key


def test_the_console_loads_nothing_from_elsewhere() -> None:
    for path in [*WEB.rglob("*.html"), *WEB.rglob("*.js"), *WEB.rglob("*.css")]:
        text = path.read_text("utf-8")
        assert not re.search(r"(?:src|href)\s*=\s*[\"']?(?:https?:)?//", text), path
        assert not re.search(r"url\(\s*[\"']?(?:https?:)?//", text), path
        assert 'fetch("http' not in text and "fetch(`http" not in text, path
