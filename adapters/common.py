"""Types every department's interface shares."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Model(BaseModel):
    """Base of every message exchanged with a department: strict about unknown fields."""

    model_config = ConfigDict(extra="forbid", frozen=False)


class Party(Model):
    """A person or organisation named in an application."""

    name: str = Field(min_length=1, max_length=200)
    id_type: str = "居民身份证"  # 居民身份证 | 统一社会信用代码 | 护照 | 港澳台居民居住证 …
    id_number: str = Field(min_length=1, max_length=64)
    phone: str | None = None
