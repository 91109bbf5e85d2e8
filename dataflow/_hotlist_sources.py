"""Where the flow's hotlists come from: the files in ``PLATEFLOW_HOTLIST_FILES`` and the live
version of every list in the records database. A file's list is named by the file's stem; a
file and a database list with the same name is refused, since one would silently hide the other.
"""

from __future__ import annotations

import logging
from pathlib import Path

import records
from dataflow._config import HotlistConfig
from dataflow._errors import DataflowError
from matchers import Hotlist

log = logging.getLogger(__name__)


class HotlistSources:
    def __init__(self, config: HotlistConfig) -> None:
        self._files: dict[str, Path] = {p.stem: p for p in config.hotlist_files}
        self._engine = records.connect(config.database_url)

    def load_all(self) -> list[Hotlist]:
        lists = [records.load_hotlist_file(path) for path in self._files.values()]
        stored = records.load_hotlists(self._engine)
        clash = sorted(set(self._files) & {h.name for h in stored})
        if clash:
            msg = (
                f"hotlist(s) {', '.join(clash)} exist both as a file and in the database; "
                "rename the file or remove it from PLATEFLOW_HOTLIST_FILES"
            )
            raise DataflowError(msg)
        return lists + stored

    def load_one(self, name: str) -> Hotlist | None:
        if name in self._files:
            return records.load_hotlist_file(self._files[name])
        try:
            return records.load_hotlist(self._engine, name)
        except records.NotFoundError:
            return None
