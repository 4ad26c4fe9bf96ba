"""What a client chooses for a slice (the seed's ``layerHeight``, ``infill``, ``supports``), validated.

The same model in the API's request body and in ``studio_tmp_files.metadata.settings``; its
canonical JSON is part of the result cache's key.
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Supports(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(False, description="print with supports under overhangs")
    pattern: Literal["normal", "tree"] = Field("normal", description="normal (grid) or tree supports")
    angle: int = Field(55, ge=1, le=89, description="overhangs steeper than this from vertical get supports "
                       "(degrees from the horizontal plane that still print without them)")


class SliceOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    layer_height: float = Field(0.2, ge=0.05, le=0.35, alias="layerHeight",
                                description="mm; at most 0.35 on a 0.4 mm nozzle")
    infill: int = Field(15, ge=0, le=100, description="% of the inside filled")
    supports: Supports = Field(default_factory=Supports)

    @model_validator(mode="after")
    def _round(self) -> "SliceOptions":
        # 0.2 and 0.20000001 are the same slice: the cache key must not tell them apart.
        object.__setattr__(self, "layer_height", round(self.layer_height, 3))
        return self

    def canonical(self) -> str:
        return json.dumps(self.model_dump(by_alias=True), sort_keys=True, separators=(",", ":"))
