"""The typed catalogue of emergency supplies: each item's category, kind and unit.

The item ids, names and units are those of ``hub.engine.catalogue`` (the vocabulary playbooks'
``request_resources`` steps are checked against); this module adds what the registry needs to
file them: a category (flood control, hazardous materials, ...) and a kind (consumed, or
equipment that comes back), and a few items no playbook asks for yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from hub.engine.catalogue import ITEMS as PLAYBOOK_ITEMS
from hub.engine.catalogue import Item


class Category(StrEnum):
    FLOOD_CONTROL = "flood-control"
    HAZMAT = "hazmat"
    SHELTER = "shelter"
    MEDICAL = "medical"
    WATER_FOOD = "water-food"
    POWER = "power"
    RESCUE = "rescue-equipment"


CATEGORY_NAMES: MappingProxyType[Category, tuple[str, str]] = MappingProxyType(
    {
        Category.FLOOD_CONTROL: ("防汛物资", "flood control"),
        Category.HAZMAT: ("危化品处置物资", "hazardous materials"),
        Category.SHELTER: ("安置物资", "shelter"),
        Category.MEDICAL: ("医疗防疫物资", "medical"),
        Category.WATER_FOOD: ("饮水食品", "water and food"),
        Category.POWER: ("电力照明", "power and lighting"),
        Category.RESCUE: ("救援装备", "rescue equipment"),
    }
)


class Kind(StrEnum):
    CONSUMABLE = "consumable"
    """Used up where it is sent (sandbags, water): a loan comes back as a replacement or not."""
    EQUIPMENT = "equipment"
    """Returned after use (pumps, boats, generators)."""


@dataclass(frozen=True, slots=True)
class Supply:
    """A catalogue entry: the shared item (id, names, unit) filed under a category and kind."""

    item: Item
    category: Category
    kind: Kind

    @property
    def id(self) -> str:
        return self.item.id

    def amount(self, quantity: int) -> str:
        """``quantity`` in English with its unit: "2,000 sandbags", "5 tonnes of foam"."""
        if self.item.en.endswith(self.item.unit_en):
            return f"{quantity:,} {self.item.en}"
        return f"{quantity:,} {self.item.unit_en} of {self.item.en}"


_C, _K = Category, Kind
_FILING: dict[str, tuple[Category, Kind]] = {
    "sandbag": (_C.FLOOD_CONTROL, _K.CONSUMABLE),
    "water-pump": (_C.FLOOD_CONTROL, _K.EQUIPMENT),
    "rescue-boat": (_C.RESCUE, _K.EQUIPMENT),
    "life-jacket": (_C.RESCUE, _K.EQUIPMENT),
    "oil-boom": (_C.HAZMAT, _K.EQUIPMENT),
    "absorbent-pad": (_C.HAZMAT, _K.CONSUMABLE),
    "activated-carbon": (_C.HAZMAT, _K.CONSUMABLE),
    "hazmat-suit": (_C.HAZMAT, _K.CONSUMABLE),
    "foam-concentrate": (_C.HAZMAT, _K.CONSUMABLE),
    "generator": (_C.POWER, _K.EQUIPMENT),
    "lighting-tower": (_C.POWER, _K.EQUIPMENT),
    "crowd-barrier": (_C.SHELTER, _K.EQUIPMENT),
    "emergency-tent": (_C.SHELTER, _K.EQUIPMENT),
    "drinking-water": (_C.WATER_FOOD, _K.CONSUMABLE),
    "medical-mask": (_C.MEDICAL, _K.CONSUMABLE),
    "disinfectant": (_C.MEDICAL, _K.CONSUMABLE),
    "test-kit": (_C.MEDICAL, _K.CONSUMABLE),
}

# Items the registry stocks that no playbook names yet.
_EXTRA = (
    Supply(Item("folding-bed", "折叠床", "folding beds", "张", "beds"), _C.SHELTER, _K.EQUIPMENT),
    Supply(Item("cotton-quilt", "棉被", "quilts", "床", "quilts"), _C.SHELTER, _K.CONSUMABLE),
    Supply(
        Item("food-ration", "应急食品", "emergency food rations", "箱", "cases"),
        _C.WATER_FOOD,
        _K.CONSUMABLE,
    ),
    Supply(
        Item("first-aid-kit", "急救包", "first-aid kits", "个", "kits"), _C.MEDICAL, _K.CONSUMABLE
    ),
    Supply(
        Item("woven-bag", "编织袋", "woven bags", "条", "bags"), _C.FLOOD_CONTROL, _K.CONSUMABLE
    ),
)

SUPPLIES: MappingProxyType[str, Supply] = MappingProxyType(
    {
        **{i: Supply(PLAYBOOK_ITEMS[i], c, k) for i, (c, k) in _FILING.items()},
        **{s.id: s for s in _EXTRA},
    }
)

if missing := set(PLAYBOOK_ITEMS) - set(SUPPLIES):  # a playbook item the registry cannot file
    raise RuntimeError(f"registry catalogue lacks playbook items {sorted(missing)}")


def supply(item_id: str) -> Supply:
    """The catalogue entry for ``item_id``; raises ValueError naming the known ids."""
    found = SUPPLIES.get(item_id)
    if found is None:
        raise ValueError(
            f"unknown item '{item_id}' (the catalogue has: {', '.join(sorted(SUPPLIES))})"
        )
    return found
