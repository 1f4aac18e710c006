"""Batch runs on a Dask cluster (``--cluster ADDRESS`` of ``analyze``, ``deid dicom`` and ``evaluate``).

The scheduler is the site's (``dask scheduler``, ``dask worker ADDRESS`` on each machine, or any Dask deployment);
we only submit work to it. Each worker builds what a task needs once, when it first needs it (the model, the
de-identifier, its connection to the audit log) and keeps it for every later task (:class:`WorkerResource`); tasks
come back in the order they were given, so the outputs are those of the run on one machine.

Workers build their pipeline from their own settings (``CLINICAL_MM_*`` in their environment): the pseudonymisation
key never travels with a task; a worker whose key is another than the coordinator's refuses to work (the key id is
checked). Workers need the inputs and the output folder at the same paths (shared storage), and an audit log they
can all write: the deployment's PostgreSQL (``CLINICAL_MM_DATABASE_URL``), or one SQLite file when they share a
machine. Across machines, use a ``tls://`` scheduler address with Dask's TLS settings.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from distributed import Client, WorkerPlugin

from clinical_mm.core.errors import ConfigurationError

__all__ = ["ClusterRun", "WorkerResource", "worker_resource"]

_LOCK = threading.Lock()
_RESOURCES: dict[str, Any] = {}


class WorkerResource:
    """What a worker process builds once and keeps: ``factory()`` run on the first task that names ``name``; a
    resource with a ``close`` method is closed when the worker shuts down."""

    def __init__(self, name: str, factory: Callable[[], Any]) -> None:
        self.name, self.factory = name, factory


def worker_resource(resource: WorkerResource) -> Any:
    """The worker's instance of ``resource``, built on first use (in this process: a worker's tasks share it)."""
    with _LOCK:
        if resource.name not in _RESOURCES:
            _RESOURCES[resource.name] = resource.factory()
        return _RESOURCES[resource.name]


def _call(resource: WorkerResource, fn: Callable[..., Any], item: Any, args: tuple[Any, ...]) -> Any:
    return fn(worker_resource(resource), item, *args)


def _close_all() -> None:
    with _LOCK:
        for value in _RESOURCES.values():
            close = getattr(value, "close", None)
            if callable(close):
                close()
        _RESOURCES.clear()


class _CloseOnTeardown(WorkerPlugin):
    """A Dask worker plugin: the resources of a worker are closed when it stops (the audit log's last checkpoint)."""

    name = "clinical-mm-resources"

    def teardown(self, worker: Any) -> None:
        _close_all()


class ClusterRun:
    """A connection to the Dask scheduler at ``address`` for one batch run."""

    def __init__(self, address: str, timeout_s: float = 30.0) -> None:
        try:
            self.client = Client(address, timeout=timeout_s, set_as_default=False)  # type: ignore[no-untyped-call]
        except (OSError, TimeoutError) as exc:
            raise ConfigurationError(f"cannot reach the Dask scheduler at {address} ({exc.__class__.__name__})") \
                from None
        self.client.register_plugin(_CloseOnTeardown(), name=_CloseOnTeardown.name)

    def __enter__(self) -> ClusterRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.client.close()  # type: ignore[no-untyped-call]

    @property
    def workers(self) -> int:
        return len(self.client.scheduler_info(n_workers=-1).get("workers", {}))

    def map(self, resource: WorkerResource, fn: Callable[..., Any], items: Sequence[Any] | Iterable[Any],
            *args: Any) -> Iterator[Any]:
        """``fn(resource, item, *args)`` for every item on the cluster's workers; the results in the items' order,
        each as soon as it and those before it are done. A task's exception is raised here."""
        futures = [self.client.submit(_call, resource, fn, item, args, pure=False) for item in items]
        try:
            for future in futures:
                yield future.result()
        finally:
            for future in futures:
                future.cancel()  # type: ignore[no-untyped-call]
