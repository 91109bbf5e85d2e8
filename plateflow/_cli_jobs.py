"""``plateflow job NAME -- COMMAND…``: run a plateflow command as a periodic job and record
how it ended (``{data_dir}/_jobs/NAME.json``, see :mod:`sinks._jobs`), so the API's
``/metrics`` can show when it last ran and last succeeded. The Kubernetes CronJobs run their
commands this way."""

from __future__ import annotations

import argparse
import logging
import time
from typing import Any

from plateflow._cli_parts import command
from plateflow.errors import PlateflowError
from plateflow.settings import Settings

log = logging.getLogger(__name__)


class JobError(PlateflowError):
    """A job command line that cannot run."""


def register(sub: Any) -> None:
    p = command(
        sub,
        "job",
        cmd_job,
        help="run a command as a periodic job and record its outcome for /metrics",
        description="Run COMMAND (a plateflow command line after --) and record its start, end "
        "and exit code in DATA_DIR/_jobs/NAME.json. Exits with the command's exit code.",
    )
    p.add_argument("name", help="the job's name, e.g. retention-purge")
    p.add_argument(
        "argv", nargs=argparse.REMAINDER, metavar="COMMAND", help="-- then the plateflow command"
    )


def cmd_job(args: argparse.Namespace, settings: Settings) -> int:
    from plateflow.cli import main
    from sinks import record_job_run

    command = list(args.argv)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command or command[0] == "job":
        raise JobError("give the plateflow command to run after --, e.g. -- retention purge")
    started = time.time()
    code = 1
    try:
        code = main(command)
    except SystemExit as exc:  # argparse refusing the inner command line
        code = exc.code if isinstance(exc.code, int) else 1
    except Exception:  # recorded as a failed run, then raised for the job's log
        log.exception("job %s: %s failed", args.name, " ".join(command))
        raise
    finally:
        run = record_job_run(
            settings.data_dir, args.name, started=started, finished=time.time(), exit_code=code
        )
        log.info("job %s finished with exit code %d in %.1f s", args.name, code,
                 run.finished - run.started)  # fmt: skip
    return code
