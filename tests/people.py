"""Members for tests: one helper that creates a user and, unless told otherwise, their current
training (every test that needs people needs exactly this; each user costs an argon2 hash)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

from sqlalchemy.engine import Engine

import records

__all__ = ["add_person"]


def add_person(
    engine: Engine,
    username: str,
    roles: Sequence[str],
    *,
    password: str,
    name: str | None = None,
    agency: str = "Example SO",
    job_title: str | None = None,
    trained: bool = True,
    course: str = "ALPR",
    by: str = "admin",
) -> None:
    """Add ``username`` with ``roles`` (name: the username title-cased; job title: the first
    role) and, when ``trained``, a training record completed a week ago that expires in a year."""
    records.add_user(
        engine,
        username=username,
        name=name or username.title(),
        agency=agency,
        job_title=job_title or roles[0],
        roles=list(roles),
        password=password,
        by=by,
    )
    if trained:
        # a week ago: acts the tests date an hour or a day back (a report's dispositions) still
        # fall inside the training, whatever the hour the suite runs at
        today = datetime.now(timezone.utc).date()
        records.record_training(
            engine,
            username,
            course=course,
            completed_on=today - timedelta(days=7),
            expires_on=today + timedelta(days=365),
            by=by,
        )
