"""How :class:`plateflow.settings.Settings` is loaded: each field's raw text from a flag, an
environment variable or (for a secret) the file a ``*_FILE`` variable names, parsed by the field's
parser, with the source of every value kept for ``plateflow settings``. Imports nothing of the
project but :mod:`plateflow.errors`."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

from plateflow.errors import SettingsError

ENV_PREFIX = "PLATEFLOW_"

_S = TypeVar("_S", bound="SettingsLoader")

#: Environment variables with the prefix that are not settings but are read elsewhere
#: (``PLATEFLOW_INGEST_TOKEN``: the one token ``plateflow bench target`` sends).
_NOT_SETTINGS = frozenset(
    {
        "PLATEFLOW_BOOTSTRAP_PASSWORD",
        "PLATEFLOW_NEW_PASSWORD",
        "PLATEFLOW_SESSION_TOKEN",
        "PLATEFLOW_INGEST_TOKEN",
    }
)

#: Suffix of the variable that names a file holding a secret setting's value.
FILE_SUFFIX = "_FILE"


@dataclass(frozen=True)
class Source:
    """Where a setting's value came from: ``kind`` is ``default``, ``env``, ``file`` (a secret
    read from the file a ``*_FILE`` variable names) or ``flag``; ``where`` names the variable,
    file or flag (empty for a default)."""

    kind: str
    where: str = ""


class SettingsLoader:
    """The loading half of :class:`plateflow.settings.Settings` (a frozen dataclass whose
    fields are declared with :func:`plateflow._setting_fields._setting`)."""

    # -- construction ---------------------------------------------------------------------------

    @classmethod
    def load(
        cls: type[_S], environ: Mapping[str, str] | None = None, **overrides: str | None
    ) -> _S:
        """Build settings from the environment and overrides given as raw strings (CLI values).

        Raises :class:`SettingsError` naming the setting for an unknown variable or a bad value.
        """
        return cls.load_explained(environ, **overrides)[0]

    @classmethod
    def load_explained(
        cls: type[_S], environ: Mapping[str, str] | None = None, **overrides: str | None
    ) -> tuple[_S, dict[str, Source]]:
        """:meth:`load`, and where each setting's value came from (by field name)."""
        env = os.environ if environ is None else environ
        fields = dataclasses.fields(cast(Any, cls))  # a dataclass subclass
        _refuse_unknown(env, fields)
        bad_keys = sorted(set(overrides) - {f.name for f in fields})
        if bad_keys:
            raise SettingsError(f"unknown setting(s) {', '.join(bad_keys)}")
        values: dict[str, Any] = {}
        sources: dict[str, Source] = {}
        for f in fields:
            raw, source = _raw_value(f, env, overrides.get(f.name))
            sources[f.name] = source
            if raw is None:
                continue
            try:
                values[f.name] = f.metadata["parse"](raw)
            except ValueError as exc:
                shown = "***" if f.metadata["secret"] else repr(raw)
                where = f"{source.kind} {source.where}"
                msg = f"setting {f.name} ({where}) = {shown} is not allowed: expected {exc}"
                raise SettingsError(msg) from exc
            if source.kind == "file" and f.metadata["at_path"] is not None:
                values[f.name] = f.metadata["at_path"](values[f.name], Path(source.where))
        settings = cls(**values)
        settings._check()
        return settings, sources

    def _check(self) -> None:
        """Checks across fields, after loading and after :meth:`replace`."""

    def replace(self: _S, **changes: Any) -> _S:
        """A copy with some fields changed (values already parsed), checked again."""
        settings: _S = dataclasses.replace(cast(Any, self), **changes)
        settings._check()
        return settings


def _refuse_unknown(env: Mapping[str, str], fields: tuple[dataclasses.Field[Any], ...]) -> None:
    known = {env_name(f.name) for f in fields}
    known |= {env_name(f.name) + FILE_SUFFIX for f in fields if f.metadata["secret"]}
    unknown = sorted(
        k
        for k in env
        if k.startswith(ENV_PREFIX)
        and k not in known
        and k not in _NOT_SETTINGS
        and not k.startswith("PLATEFLOW_TEST_")
    )
    if unknown:
        msg = f"unknown setting(s) {', '.join(unknown)}; known settings are " + ", ".join(
            sorted(known)
        )
        raise SettingsError(msg)


def _raw_value(
    f: dataclasses.Field[Any], env: Mapping[str, str], flag: str | None
) -> tuple[str | None, Source]:
    """The raw text of one setting and its source: flag, else variable, else secret file."""
    if flag is not None:
        return flag, Source("flag", "--" + f.name.replace("_", "-"))
    variable = env_name(f.name)
    raw = env.get(variable)
    file_variable = variable + FILE_SUFFIX
    path = env.get(file_variable) if f.metadata["secret"] else None
    if path is None:
        return raw, Source("default") if raw is None else Source("env", variable)
    if raw is not None:
        msg = f"setting {f.name} is given by both {variable} and {file_variable}; unset one"
        raise SettingsError(msg)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        if f.metadata["at_path"] is None:
            raise _unreadable(f.name, file_variable, path, exc) from exc
        # A file the program re-reads (the ingest tokens) may appear later: empty until then.
        return "", Source("file", path)
    except (OSError, UnicodeDecodeError) as exc:
        raise _unreadable(f.name, file_variable, path, exc) from exc
    # Files written by editors and `echo` end with a newline that is no part of the secret.
    return text.strip(), Source("file", path)


def _unreadable(name: str, file_variable: str, path: str, exc: Exception) -> SettingsError:
    return SettingsError(
        f"setting {name} ({file_variable}) names {path!r}, which cannot be read ({exc}); "
        "give the path of a readable UTF-8 file holding the value"
    )


def env_name(field_name: str) -> str:
    """``partitions`` -> ``PLATEFLOW_PARTITIONS``."""
    return ENV_PREFIX + field_name.upper()
