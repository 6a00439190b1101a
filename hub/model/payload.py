"""The base of every event payload: frozen, and no field the schema does not name."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
