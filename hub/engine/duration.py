"""ISO 8601 durations (``PT30M``, ``P1DT2H``) as used for deadlines in playbooks and agreements."""

from __future__ import annotations

import re
from functools import lru_cache

_DURATION = re.compile(
    r"^P(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)


@lru_cache(maxsize=1024)
def duration_ms(text: str) -> int:
    """Milliseconds in an ISO 8601 duration without years or months (their length varies)."""
    match = _DURATION.match(text)
    if not match or text in ("P", "PT") or text.endswith("T"):
        raise ValueError(f"'{text}' is not an ISO 8601 duration such as PT30M or P1DT2H")
    parts = {k: float(v) if v else 0.0 for k, v in match.groupdict().items()}
    seconds = (
        parts["w"] * 604800 + parts["d"] * 86400 + parts["h"] * 3600 + parts["m"] * 60 + parts["s"]
    )
    return round(seconds * 1000)
