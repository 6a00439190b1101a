"""``liandong registry import``, ``balances``, ``rm-import`` and ``rm-export`` as an operator runs
them, in subprocesses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

LIANDONG = [sys.executable, "-c", "from hub.cli import main; main()"]
DATA = Path(__file__).resolve().parents[2] / "hub" / "registry" / "data"

DEPOTS = """id,jurisdiction,name_zh,name_en,lat,lon,address,demo
js-1,330421,嘉善县测试仓库,Jiashan test depot,30.9135,120.89941,,true
wj-1,320509,吴江区测试仓库,Wujiang test depot,30.97095,120.56513,,true
"""
STOCK = """depot,item,on_hand,floor
js-1,sandbag,3200,2000
wj-1,water-pump,12,4
"""


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*LIANDONG, "registry", *args], capture_output=True, text=True, timeout=60, check=False
    )


def _files(tmp_path: Path, depots: str, stock: str) -> tuple[str, str]:
    (tmp_path / "depots.csv").write_text(depots, encoding="utf-8")
    (tmp_path / "stock.csv").write_text(stock, encoding="utf-8")
    return str(tmp_path / "depots.csv"), str(tmp_path / "stock.csv")


def test_bad_rows_are_named_and_nothing_is_imported(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    bad_depots = DEPOTS + "xx-1,330421,错位仓库,Misplaced depot,31.19754,121.13634,,true\n"
    bad_stock = STOCK + "js-1,sand bags,10,0\nwj-1,sandbag,-5,0\n"
    done = _cli("import", *_files(tmp_path, bad_depots, bad_stock), "--data", data)
    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: depots.csv: row 3 (xx-1): 31.19754, 121.13634 lies in Qingpu District (310118), "
        "not in 330421",
        "error: stock.csv: row 3 (js-1): item 'sand bags' is not in the catalogue",
        "error: stock.csv: row 4 (wj-1): on_hand -5 is negative",
    ]
    listed = _cli("balances", "--data", data)
    assert listed.returncode == 0 and listed.stdout.strip().splitlines()[1:] == []


def test_good_files_import_and_balances_print(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    files = _files(tmp_path, DEPOTS, STOCK)
    done = _cli("import", *files, "--data", data)
    assert done.returncode == 0, done.stderr
    assert "2 ledger entries" in done.stdout
    assert "0 ledger entries" in _cli("import", *files, "--data", data).stdout  # same count again
    shown = _cli("balances", "--depot", "js-1", "--data", data)
    assert shown.stdout.strip().splitlines() == [
        "depot\titem\ton_hand\theld\tfloor\tavailable\tunit",
        "js-1\tsandbag\t3200\t0\t2000\t1200\tbags",
    ]
    pumps = _cli("balances", "--item", "water-pump", "--data", data)
    assert pumps.stdout.strip().splitlines()[1:] == ["wj-1\twater-pump\t12\t0\t4\t8\tunits"]


def test_demo_data_imports_cleanly(tmp_path: Path) -> None:
    done = _cli(
        "import", str(DATA / "demo-depots.csv"), str(DATA / "demo-stock.csv"),
        "--data", str(tmp_path / "data"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    shown = _cli("balances", "--item", "sandbag", "--data", str(tmp_path / "data"))
    depots = {line.split("\t")[0] for line in shown.stdout.strip().splitlines()[1:]}
    assert {"310118-main", "320509-main", "330421-main"} <= depots and len(depots) >= 15


def _rm_request(tmp_path: Path) -> Path:
    from hub.codecs import edxl_rm

    message = edxl_rm.RmMessage(
        edxl_rm.MessageType.REQUEST, "flood-7", "2026-07-01T08:00:00+08:00", "320509",
        (
            edxl_rm.RmLine(
                1, "sandbag", 300, "js-1", "yrd-demo-zone-emergency-linkage", "5",
                "2026-07-01T12:00:00+08:00", "Lili town flood post",
            ),
        ),
    )  # fmt: skip
    path = tmp_path / "request.xml"
    path.write_bytes(edxl_rm.encode(message))
    return path


def test_edxl_rm_import_and_export_through_the_registry(tmp_path: Path) -> None:
    import sqlite3

    from hub.codecs import edxl_rm

    data = str(tmp_path / "data")
    assert _cli("import", *_files(tmp_path, DEPOTS, STOCK), "--data", data).returncode == 0
    done = _cli("rm-import", str(_rm_request(tmp_path)), "--data", data)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "RequestResource flood-7: 1 line(s)",
        "flood-7\t1\tjs-1\tsandbag\t300\trequested\t0\t0",
    ]
    # 3,200 on hand, floor 2,000: 300 held.
    assert _cli("balances", "--depot", "js-1", "--data", data).stdout.splitlines()[1].split("\t")[
        2:4
    ] == ["3200", "300"]
    exported = _cli("rm-export", "flood-7", "--data", data)
    assert exported.returncode == 0, exported.stderr
    back = edxl_rm.decode(exported.stdout.encode())
    assert (back.type, back.message_id, back.requester) == (
        edxl_rm.MessageType.REQUEST, "flood-7", "320509"
    )  # fmt: skip
    assert [(x.depot, x.item, x.quantity, x.deliver_to) for x in back.lines] == [
        ("js-1", "sandbag", 300, "Lili town flood post")
    ]
    # Jiashan's answer arrives as a file: accepted for 200, the rest goes back.
    answer = edxl_rm.RmMessage(
        edxl_rm.MessageType.RESPONSE, "flood-7-answer", "2026-07-01T08:10:00+08:00", "320509",
        (edxl_rm.RmLine(1, "sandbag", 200, response="Accept"),), responder="330421",
        originating="flood-7",
    )  # fmt: skip
    (tmp_path / "answer.xml").write_bytes(edxl_rm.encode(answer))
    applied = _cli("rm-import", str(tmp_path / "answer.xml"), "--data", data)
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.splitlines()[1] == "flood-7\t1\tjs-1\tsandbag\t300\taccepted\t200\t0"
    again = _cli("rm-import", str(tmp_path / "answer.xml"), "--data", data)
    assert again.returncode == 1 and "accepted: a response needs it" in again.stderr
    # A commitment claiming to come from Qingpu for Jiashan's line is refused; nothing changes.
    wrong = edxl_rm.encode(
        edxl_rm.RmMessage(
            edxl_rm.MessageType.COMMIT, "flood-7-c", "2026-07-01T08:20:00+08:00", "320509",
            (edxl_rm.RmLine(1, "sandbag", 200),), responder="310118", originating="flood-7",
        )
    )  # fmt: skip
    (tmp_path / "wrong.xml").write_bytes(wrong)
    refused = _cli("rm-import", str(tmp_path / "wrong.xml"), "--data", data)
    assert refused.returncode == 1 and "only 330421 may commit" in refused.stderr
    hostile = tmp_path / "hostile.xml"
    hostile.write_text(
        '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        '<RequestResource xmlns="urn:oasis:names:tc:emergency:EDXL:RM:1.0:msg">&x;'
        "</RequestResource>",
        encoding="utf-8",
    )
    bad = _cli("rm-import", str(hostile), "--data", data)
    assert bad.returncode == 1 and "DTDs are not accepted" in bad.stderr
    with sqlite3.connect(tmp_path / "data" / "liandong.db") as db:
        types = [
            orjson.loads(v)["type"]
            for (v,) in db.execute("SELECT value FROM log WHERE topic = 'liandong.resources.v1'")
        ]
    assert types == [
        "stock.held", "resource.line_moved", "stock.released", "resource.line_moved"
    ]  # fmt: skip
