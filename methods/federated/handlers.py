"""Flower's Fleet and Runtime API handlers called on the server's event loop, not in a worker thread.

FastAPI calls every endpoint and dependency written as a plain ``def`` in a worker thread of
anyio's pool (``run_in_threadpool``): the event loop hands the call to the thread and waits for it
to hand the result back. Flower 1.42's Fleet API (``/v1/fleet/``: the SuperNodes' pulls and
pushes) and Runtime API (``/v1/runtime/``: the ServerApp's on the SuperLink, the ClientApp tasks'
on each SuperNode) are such functions, and each returns at once: it reads or writes the in-memory
LinkState or NodeState (a lock held for a dictionary update; no sleep, no file or network I/O, no
wait for another request). For them the hand-over costs more than the call: for the endpoint and
for each plain-``def`` dependency, a thread is woken and the GIL passed to it and back, and the
woken thread runs only when the loop lets go of the GIL.

Here a request whose path is under one of :data:`PREFIXES` (marked by :class:`InlineScope`, a pure
ASGI layer outermost in the app) has them called directly on the loop; any other request (the
Control API, whose log streams sleep between reads; health; docs) goes to the thread pool as
before. What is called, with what arguments, results and errors, is unchanged: only the thread.

Measured side by side (``benchmarks.perf federated --engine deployment --rounds 10 --max-iter 3``,
three alternating pairs, ten SuperNodes on two cores): median round 1.94 / 2.04 / 2.08 s with the
thread pool, 1.65 / 1.50 / 1.61 s with the calls on the loop.
"""

from __future__ import annotations

import contextvars
import functools

FLEET = "/v1/fleet/"
RUNTIME = "/v1/runtime/"
PREFIXES = (FLEET, RUNTIME)

_inline = contextvars.ContextVar("privmark_inline_handlers", default=False)


class InlineScope:
    """A pure ASGI middleware: while an HTTP request whose path starts with one of ``prefixes`` is
    handled, the plain-``def`` endpoints and dependencies it reaches run on the event loop (once
    :func:`install` has patched FastAPI in this process). Tasks started inside the request (as
    ``BaseHTTPMiddleware`` layers start one for the rest of the app) inherit the mark."""

    def __init__(self, app, prefixes: tuple[str, ...] = PREFIXES):
        self.app, self.prefixes = app, tuple(prefixes)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefixes):
            await self.app(scope, receive, send)
            return
        token = _inline.set(True)
        try:
            await self.app(scope, receive, send)
        finally:
            _inline.reset(token)


def _bypass(original):
    if getattr(original, "_privmark_inline", False):
        return original

    @functools.wraps(original)
    async def run_in_threadpool(func, *args, **kwargs):
        if _inline.get():
            return func(*args, **kwargs)
        return await original(func, *args, **kwargs)

    run_in_threadpool._privmark_inline = True
    return run_in_threadpool


def install() -> None:
    """Make FastAPI, in this process, call plain-``def`` endpoints and dependencies on the loop
    inside :class:`InlineScope`'s requests (the two places it looks ``run_in_threadpool`` up);
    elsewhere it uses its thread pool as before. Idempotent."""
    import fastapi.dependencies.utils as dependencies
    import fastapi.routing as routing

    for module in (routing, dependencies):
        module.run_in_threadpool = _bypass(module.run_in_threadpool)


def install_supernode() -> None:
    """:func:`install`, and make the SuperNode's Runtime API app, built in this process by
    ``flower-supernode``, carry :class:`InlineScope` outermost."""
    install()
    from flwr.supernode import main as node_app

    create = node_app.create_app
    if getattr(create, "_privmark_inline", False):
        return

    @functools.wraps(create)
    def create_app(*args, **kwargs):
        app = create(*args, **kwargs)
        app.add_middleware(InlineScope)
        return app

    create_app._privmark_inline = True
    node_app.create_app = create_app
