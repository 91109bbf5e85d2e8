"""Writing a benchmark's result: the JSON file the suite collects, and the same on stdout."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def write_json(result: dict[str, Any], path: Path) -> None:
    """``result`` to ``path`` (folders created) and to standard output, indented."""
    text = json.dumps(result, indent=2)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    sys.stdout.write(text + "\n")
