"""The base of every settings model: unknown keys refused, hyphenated YAML keys, null = default."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator


class ConfigModel(BaseModel):
    """Shared config: unknown keys refused, hyphenated YAML keys, python names also accepted."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, alias_generator=lambda n: n.replace("_", "-"))

    @model_validator(mode="before")
    @classmethod
    def _null_means_default(cls, data: Any) -> Any:
        """``targets:`` with nothing under it (YAML null) means the default, not an error."""
        if not isinstance(data, dict):
            return data
        def keep(key: str, value: Any) -> bool:
            info = next((f for n, f in cls.model_fields.items() if key in (n, f.alias)), None)
            return value is not None or info is None or info.is_required() or info.default is None
        return {k: v for k, v in data.items() if keep(k, v)}
