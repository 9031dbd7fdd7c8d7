"""Persistence: SQLAlchemy 2 models on one declarative ``Base``, Alembic migrations, and one module of
functions over a ``Session`` per concern: ``ingest`` (the webhook's writes), ``incidents``,
``investigations`` (queue and leases), ``users``, ``conversations``, ``actions``.

Adding tables (e.g. actions and audit): put the models in a new module ``opsagent/store/<name>.py`` on
``opsagent.store.base.Base`` and add an Alembic revision under ``store/migrations/versions`` whose
``down_revision`` is the current head. Every module of this package is imported before migrations run
(``load_models``), so nothing else needs registering.
"""

from opsagent.store.db import Store

__all__ = ["Store"]
