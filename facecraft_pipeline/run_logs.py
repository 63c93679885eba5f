"""The `everything` job as `facecraft materialize` runs it: its loggers, rebuilt in each step process.

The multiprocess executor runs each step in its own process, so the job must be importable by name
(`dg.reconstructable(everything_with_logs)`) and its loggers configured by run config (the log file's
path), not by a closure. `console`: one line per event, an error's first line and where its traceback
went; `file`: everything, tracebacks included (processes append to the same file).
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import dagster as dg

from facecraft_pipeline.definitions import defs

FORMAT = logging.Formatter("%(asctime)s - %(levelname)s - %(process)d - %(message)s")


class OneLineErrors(logging.Filter):
    """On the console an error record shows its first line and where the full text went."""

    def __init__(self, log_path: str) -> None:
        super().__init__()
        self.note = f"  [traceback in {log_path}]"

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.levelno >= logging.ERROR and "\n" in message:
            record.msg, record.args = message.split("\n", 1)[0] + self.note, ()
        return True


@dg.logger(config_schema={"log_level": dg.Field(str, default_value="INFO"), "log_path": str},
           description="console, errors on one line")
def console(init_context: Any) -> logging.Logger:
    logger = logging.Logger("facecraft", level=init_context.logger_config["log_level"])
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(FORMAT)
    handler.addFilter(OneLineErrors(init_context.logger_config["log_path"]))
    logger.addHandler(handler)
    return logger


@dg.logger(config_schema={"log_level": dg.Field(str, default_value="DEBUG"), "log_path": str}, description="the run's full log file")
def file(init_context: Any) -> logging.Logger:
    logger = logging.Logger("facecraft-file", level=init_context.logger_config["log_level"])
    handler = logging.FileHandler(init_context.logger_config["log_path"], encoding="utf-8")  # append: several step processes
    handler.setFormatter(FORMAT)
    logger.addHandler(handler)
    return logger


def everything_with_logs() -> dg.JobDefinition:
    """The code location's `everything` job with the command line's loggers (a step process imports this)."""
    return defs.resolve_job_def("everything").with_logger_defs({"console": console, "file": file})


PRELOADED = ("mlflow.store.tracking.sqlalchemy_store", "mlflow.store.model_registry.sqlalchemy_store")


def run_config(log_path: str, step_processes: int) -> dict[str, Any]:
    """Loggers and executor: up to `step_processes` steps at once, started from a forkserver that has
    imported the definitions and MLflow's SQL stores once (a step process then starts in well under a
    second, and its first MLflow call does not import 0.75 s of SQLAlchemy models)."""
    return {
        "loggers": {"console": {"config": {"log_level": "INFO", "log_path": log_path}},
                    "file": {"config": {"log_level": "DEBUG", "log_path": log_path}}},
        "execution": {"config": {"max_concurrent": step_processes, "start_method": {"forkserver": {"preload_modules": [__name__, *PRELOADED]}}}},
    }
