"""The items a playbook may ask neighbours to lend, and the unit each is counted in.

The resource registry (its own issue) will own the catalogue of depots, items and stock; until it
exists this table is the vocabulary ``request_resources`` steps are checked against, so a playbook
cannot ask for "sand bags" when the registry will call them ``sandbag``. The ids are meant to be
kept when the registry takes the table over.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True, slots=True)
class Item:
    id: str
    zh: str
    en: str
    unit_zh: str
    unit_en: str


_ITEMS = (
    Item("sandbag", "防汛沙袋", "sandbags", "袋", "bags"),
    Item("water-pump", "移动排涝泵车", "mobile drainage pump units", "台", "units"),
    Item("rescue-boat", "冲锋舟", "rescue boats", "艘", "boats"),
    Item("life-jacket", "救生衣", "life jackets", "件", "pieces"),
    Item("oil-boom", "围油栏", "oil containment booms", "米", "metres"),
    Item("absorbent-pad", "吸油毡", "oil absorbent pads", "张", "pads"),
    Item("activated-carbon", "粉末活性炭", "powdered activated carbon", "吨", "tonnes"),
    Item("hazmat-suit", "防化服", "chemical protective suits", "套", "suits"),
    Item("foam-concentrate", "泡沫灭火剂", "firefighting foam concentrate", "吨", "tonnes"),
    Item("generator", "应急发电机", "emergency generators", "台", "units"),
    Item("lighting-tower", "移动照明灯塔", "mobile lighting towers", "台", "units"),
    Item("crowd-barrier", "隔离护栏", "crowd-control barriers", "米", "metres"),
    Item("emergency-tent", "救灾帐篷", "emergency tents", "顶", "tents"),
    Item("drinking-water", "瓶装饮用水", "bottled drinking water", "箱", "cases"),
    Item("medical-mask", "医用防护口罩", "medical respirator masks", "只", "masks"),
    Item("disinfectant", "消毒剂", "disinfectant", "吨", "tonnes"),
    Item("test-kit", "检测试剂", "test kits", "人份", "tests"),
)

ITEMS: MappingProxyType[str, Item] = MappingProxyType({i.id: i for i in _ITEMS})


def item(item_id: str) -> Item:
    """The catalogue entry for ``item_id``; raises ValueError naming the known ids."""
    found = ITEMS.get(item_id)
    if found is None:
        raise ValueError(
            f"unknown item '{item_id}' (the catalogue has: {', '.join(sorted(ITEMS))})"
        )
    return found
