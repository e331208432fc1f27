"""Flower's own SuperLink (``flower-superlink``, same arguments) with each API's middleware applied
to that API's requests only.

    python -m methods.federated.superlink <flower-superlink arguments>

Flower 1.42 serves the Fleet, ServerAppIo (runtime) and Control APIs from one FastAPI app and puts
eight ``BaseHTTPMiddleware`` layers in front of every request
(``flwr.superlink.main._get_middleware``). Four of them act only on Control API paths
(``/v1/control/``: account authentication, licence check, event log, no-cache headers on the login
routes) and two only on Fleet API paths (``/v1/fleet/``: the SuperNode's signature check and the
fleet event log, which does nothing either unless an event log plugin is loaded); for any other
path each of them only calls the next layer. That call is not free: each layer wraps the request
and the response in streams and a task group, and the SuperLink spends most of its CPU there, on
the hundreds of object pushes and pulls of every round.

Here each of those six layers is wrapped in :class:`PathScoped`, which sends a request through it
when its path is under the layer's prefix (the test the layer makes itself, on the same path; for
the fleet event log, also only with its plugin loaded, the layer's own second test) and straight to
the next layer otherwise. What each API's requests go through, in what order, is what Flower does:
a Fleet request still has its node's signature checked, a Control request its account
authenticated. Layers not in :data:`SCOPES` (Flower's error translation and protobuf translation,
any extension's) are left as they are.

Outermost, :class:`~methods.federated.handlers.InlineScope` has the Fleet and Runtime API
handlers called on the event loop instead of a worker thread (:mod:`methods.federated.handlers`).
"""

from __future__ import annotations

import sys

CONTROL = "/v1/control/"
FLEET = "/v1/fleet/"
#: middleware class name → (the only path prefix on which Flower 1.42's dispatch does anything,
#: the app state attribute without which it does nothing there either, or None)
SCOPES = {
    "ControlSensitiveResponseMiddleware": (CONTROL, None),
    "ControlAuthenticationMiddleware": (CONTROL, None),
    "ControlLicenseMiddleware": (CONTROL, None),
    "ControlEventLogMiddleware": (CONTROL, None),
    "NodeAuthMiddleware": (FLEET, None),
    "FleetEventLogMiddleware": (FLEET, "fleet_event_log_plugin"),
}


class PathScoped:
    """A pure ASGI middleware: HTTP requests whose path starts with ``prefix`` go through
    ``middleware(app, **kwargs)`` (with ``needs``, only while the app's state has that attribute
    set), everything else goes to ``app`` directly."""

    def __init__(self, app, middleware, prefix: str, needs: str | None = None, **kwargs):
        from starlette.datastructures import URL

        self._url = URL
        self.app, self.prefix, self.needs = app, prefix, needs
        self.scoped = middleware(app, **kwargs)

    def applies(self, scope) -> bool:
        if scope["type"] != "http" or not self._url(scope=scope).path.startswith(self.prefix):
            return False
        return self.needs is None or getattr(scope["app"].state, self.needs, None) is not None

    async def __call__(self, scope, receive, send) -> None:
        await (self.scoped if self.applies(scope) else self.app)(scope, receive, send)


def scoped(middleware: list) -> list:
    """Flower's middleware list with the layers of :data:`SCOPES` wrapped in :class:`PathScoped`."""
    from starlette.middleware import Middleware

    out = []
    for m in middleware:
        scope = SCOPES.get(getattr(m.cls, "__name__", ""))
        if scope is None or m.args or "needs" in m.kwargs:
            out.append(m)
        else:
            out.append(Middleware(PathScoped, m.cls, *scope, **m.kwargs))
    return out


def install() -> None:
    """Make Flower's SuperLink app, built in this process, use :func:`scoped` middleware, with
    :class:`~methods.federated.handlers.InlineScope` outermost (its Fleet and Runtime API handlers
    called on the event loop, :mod:`methods.federated.handlers`)."""
    from flwr.superlink import main as app_module
    from starlette.middleware import Middleware

    from methods.federated import handlers

    handlers.install()
    if getattr(app_module._get_middleware, "_privmark_scoped", False):
        return
    stock = app_module._get_middleware

    def get_middleware() -> list:
        return [Middleware(handlers.InlineScope), *scoped(stock())]

    get_middleware._privmark_scoped = True
    app_module._get_middleware = get_middleware


def main(argv: list[str] | None = None) -> None:
    install()
    from flwr.superlink.cli.flower_superlink import flower_superlink

    sys.argv = ["flower-superlink", *(sys.argv[1:] if argv is None else argv)]
    flower_superlink()


if __name__ == "__main__":
    main()
