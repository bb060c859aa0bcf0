"""Connecting to a Dask cluster: the one place that opens (or finds) a ``distributed.Client``.

Below both ``transferlab.scoring`` (``score_pool(..., client=)``) and ``transferlab.distributed``
(``knn_loo_sharded``), which import it; it imports nothing of transferlab.
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator, Optional

__all__ = ["connect"]


@contextlib.contextmanager
def connect(client: Any = None, scheduler: Optional[str] = None, **local_kw: Any) -> Iterator[Any]:
    """The Dask client to use: ``client`` if given; else a client of ``scheduler`` (an address such
    as ``"tcp://10.0.0.5:8786"``, closed on exit; ``"local"`` starts a temporary LocalCluster with
    ``local_kw``); else the current default client (``distributed.get_client()``)."""
    try:
        import distributed
    except ImportError as e:
        raise ImportError("scoring on a Dask cluster needs dask.distributed: pip install 'transferlab[dask]'") from e
    if client is not None:
        if scheduler is not None:
            raise ValueError("pass either client= or scheduler=, not both")
        yield client
        return
    if scheduler == "local":
        local_kw.setdefault("dashboard_address", None)
        with distributed.LocalCluster(**local_kw) as cluster, distributed.Client(cluster) as c:
            yield c
        return
    if scheduler is not None:
        if not isinstance(scheduler, str):
            raise TypeError(f"scheduler must be an address string, got {type(scheduler).__name__}")
        with distributed.Client(scheduler) as c:
            yield c
        return
    try:
        default = distributed.get_client()
    except ValueError:
        raise ValueError(
            "no Dask client: pass client=, scheduler='tcp://HOST:8786' (a running dask scheduler) "
            "or scheduler='local' (a LocalCluster on this machine)"
        ) from None
    yield default  # outside the try: errors of the caller's block pass through unchanged
