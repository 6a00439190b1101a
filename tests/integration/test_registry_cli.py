"""``liandong registry import`` and ``balances`` as an operator runs them, in subprocesses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
