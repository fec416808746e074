"""Building a node's helpers from its params: a library's ValueError becomes the graph's GraphError."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from runtime.errors import GraphError
from runtime.node import Context

__all__ = ["param_errors"]


@contextmanager
def param_errors(
    ctx: Context,
    param: str | None = None,
    *,
    catch: type[ValueError] | tuple[type[ValueError], ...] = ValueError,
    hint: str = "",
) -> Iterator[None]:
    """Re-raise `catch` (a bad value the library named, with its rule) as a GraphError naming the node.

    `param` names the parameter when one is at fault, `hint` is appended (e.g. the valid choices).
    The message reads `node 'cam', param 'backend': <the library's message><hint>`. A GraphError
    raised inside passes through unchanged (it already names its node).

    Example::

        with param_errors(ctx, hint=f" (activities: {', '.join(ACTIVITIES)})"):
            self.imu = SyntheticImu(p.activities, rate_hz=p.rate_hz)
    """
    try:
        yield
    except GraphError:
        raise
    except catch as exc:
        where = f"node '{ctx.node_id}'" + (f", param '{param}'" if param else "")
        raise GraphError(f"{where}: {exc}{hint}") from exc
