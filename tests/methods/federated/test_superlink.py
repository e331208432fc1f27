"""The warm runtime's SuperLink (:mod:`methods.federated.superlink`): each API's middleware on that
API's paths only, every answer the same as Flower's own app gives, strangers still refused."""

import asyncio

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from methods.federated import superlink


class Tag(BaseHTTPMiddleware):
    """Marks the responses it handled."""

    async def dispatch(self, request, call_next):
        response = await call_next(request)
        response.headers["x-tag"] = "1"
        return response


def _client(middleware):
    from starlette.testclient import TestClient

    async def ok(request):
        return PlainTextResponse(request.url.path)

    app = Starlette(routes=[Route("/{path:path}", ok, methods=["GET", "POST"])], middleware=middleware)
    return TestClient(app)


def test_path_scoped_layer_sees_only_its_prefix():
    with _client([Middleware(superlink.PathScoped, Tag, "/v1/fleet/")]) as c:
        assert c.get("/v1/fleet/pull-messages").headers.get("x-tag") == "1"
        assert "x-tag" not in c.get("/v1/runtime/pull-object").headers
        assert "x-tag" not in c.get("/v1/fleetX").headers
        assert c.get("/v1/runtime/pull-object").text == "/v1/runtime/pull-object"


def test_path_scoped_layer_with_a_state_it_needs():
    with _client([Middleware(superlink.PathScoped, Tag, "/v1/", "plugin")]) as c:
        assert "x-tag" not in c.get("/v1/fleet/x").headers  # no plugin in the app's state
        c.app.state.plugin = object()
        assert c.get("/v1/fleet/x").headers.get("x-tag") == "1"


def test_lifespan_and_other_scopes_pass_through():
    seen = []

    async def app(scope, receive, send):
        seen.append(scope["type"])

    layer = superlink.PathScoped(app, Tag, "/v1/")
    asyncio.run(layer({"type": "lifespan"}, None, None))
    assert seen == ["lifespan"]


@pytest.fixture(scope="module")
def apps():
    """Flower's SuperLink app as shipped and as the warm runtime builds it, in this process."""
    import fastapi.dependencies.utils
    import fastapi.routing
    from flwr.superlink import main as app_module

    stock_app = app_module.create_app()
    stock = app_module._get_middleware
    pools = {m: m.run_in_threadpool for m in (fastapi.routing, fastapi.dependencies.utils)}
    try:
        superlink.install()
        superlink.install()  # idempotent
        scoped_app = app_module.create_app()
        yield stock_app, scoped_app
    finally:
        app_module._get_middleware = stock
        for module, pool in pools.items():
            module.run_in_threadpool = pool


def test_only_the_six_api_specific_layers_are_scoped(apps):
    from methods.federated.handlers import InlineScope

    stock_app, scoped_app = apps
    assert scoped_app.user_middleware[0].cls is InlineScope  # outermost
    stock = [m.cls.__name__ for m in stock_app.user_middleware]
    scoped = [m.cls.__name__ if m.cls is not superlink.PathScoped else f"scoped:{m.args[0].__name__}"
              for m in scoped_app.user_middleware[1:]]
    assert len(stock) == len(scoped) == 8
    for name, got in zip(stock, scoped, strict=True):
        assert got == (f"scoped:{name}" if name in superlink.SCOPES else name)
    assert scoped.count("BaseHTTPMiddleware") == 1 and "ProtobufTranslationMiddleware" in scoped


def test_same_answers_as_flowers_app_and_strangers_refused(apps):
    from flwr.proto.fleet_pb2 import PullMessagesRequest
    from starlette.testclient import TestClient

    body = PullMessagesRequest().SerializeToString()
    proto = {"content-type": "application/protobuf"}
    requests = [
        ("post", "/v1/fleet/pull-messages", body, proto),  # no SuperNode signature
        ("post", "/v1/fleet/pull-messages", body, {**proto, "x-flwr-public-key": "AAAA",
                                                    "x-flwr-signature": "AAAA", "x-flwr-timestamp": "x"}),
        ("post", "/v1/fleet/pull-messages", b"\xff\xff", proto),  # not protobuf
        ("post", "/v1/runtime/get-nodes", b"", proto),  # no task token
        ("post", "/v1/fleet/pull-messages", body, {"content-type": "text/plain"}),
        ("get", "/health", None, {}),
        ("get", "/v1/no-such-route", None, {}),
    ]
    answers = []
    for app in apps:
        with TestClient(app) as c:
            answers.append([(r.status_code, r.content, r.headers.get("content-type"))
                            for method, path, content, headers in requests
                            for r in [getattr(c, method)(path, **({"content": content} if content is not None
                                                                  else {}), headers=headers)]])
    stock, scoped = answers
    assert scoped == stock
    assert scoped[0][0] == scoped[1][0] == 401  # the Fleet API still checks every SuperNode
    assert scoped[3][0] >= 400 and scoped[5][0] == 200
