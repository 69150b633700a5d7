"""Run the Prefect server (`prefect server start`) with a fix for SQLAlchemy 2.1.

Prefect 3.8.8's scheduler service inserts its scheduled flow runs in one bulk INSERT whose rows carry a
`state` key, which is a hybrid property of Prefect's FlowRun model (the state rows are inserted next).
SQLAlchemy 2.0 ignored that key; 2.1 (pinned here for sqlmodel) raises "Can't evaluate bulk DML statement;
please supply a bulk_dml decorated function", so no deployment schedule ever produces a run. The fix gives
the two `state` hybrids a bulk-DML hook that drops the key, which is what 2.0 did.

    python -m duly.prefect_compat server start --host 0.0.0.0 --port 4200

takes the same arguments and environment as `prefect` (the fix is applied, then Prefect's own command runs
in this process).
"""

from __future__ import annotations

import sys
from collections.abc import MutableMapping
from typing import Any


def _drop_state(cls: type, mapping: MutableMapping[str, Any], value: Any) -> None:
    mapping.pop("state", None)


def patch_prefect_server() -> bool:
    """Give FlowRun.state and TaskRun.state a bulk-DML hook (SQLAlchemy >= 2.1 only); True if patched."""
    import sqlalchemy
    from sqlalchemy.ext.hybrid import hybrid_property

    if tuple(int(part) for part in sqlalchemy.__version__.split(".")[:2]) < (2, 1):
        return False
    from prefect.server.database import orm_models

    patched = False
    for model in (orm_models.FlowRun, orm_models.TaskRun):
        hybrid = model.__dict__.get("state")
        if isinstance(hybrid, hybrid_property) and hybrid.bulk_dml_setter is None:
            hybrid.inplace.bulk_dml(_drop_state)  # (`hybrid.bulk_dml` itself fails in 2.1.9: a wrong keyword)
            patched = True
    return patched


def main() -> None:
    patch_prefect_server()
    from prefect.cli import app

    sys.argv[0] = "prefect"
    sys.exit(app())


if __name__ == "__main__":
    main()
