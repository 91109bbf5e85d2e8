"""Response models shared by the routers (the OpenAPI document is built from them)."""

from __future__ import annotations

from pydantic import BaseModel, Field

__all__ = ["ErrorBody", "HealthResponse"]


class ErrorBody(BaseModel):
    """Every refusal: a sentence that names what is wrong and how to fix it."""

    detail: str = Field(description="What is wrong and how to fix it.")


class HealthResponse(BaseModel):
    status: str = Field(description="`ok` when every dependency answered, else `unavailable`.")
    checks: dict[str, str] = Field(
        description="Each dependency (`redis`, `database`) and `ok` or the error class."
    )
