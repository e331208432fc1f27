"""Flower's Fleet and Runtime API handlers on the event loop (:mod:`methods.federated.handlers`):
plain-``def`` endpoints and dependencies under those prefixes run on the loop's thread, everything
else in FastAPI's thread pool, with the same answers and errors; the SuperNode's app carries the
layer and answers as Flower's does."""

import threading
from typing import Annotated

import fastapi.dependencies.utils
import fastapi.routing
import pytest
from fastapi import Depends, FastAPI, HTTPException
from starlette.testclient import TestClient

from methods.federated import handlers


@pytest.fixture
def patched(monkeypatch):
    """FastAPI patched by :func:`handlers.install` for the test only."""
    for module in (fastapi.routing, fastapi.dependencies.utils):
        monkeypatch.setattr(module, "run_in_threadpool", module.run_in_threadpool)
    handlers.install()
    handlers.install()  # idempotent: wraps once
    assert fastapi.routing.run_in_threadpool.__wrapped__.__module__ == "starlette.concurrency"


def _app(scoped: bool = True) -> FastAPI:
    app = FastAPI()

    def dependency() -> int:
        return threading.get_ident()

    for prefix in ("/v1/fleet", "/v1/runtime", "/v1/control"):
        @app.post(f"{prefix}/where")
        def where(dep: Annotated[int, Depends(dependency)]) -> dict:
            return {"endpoint": threading.get_ident(), "dependency": dep}

        @app.post(f"{prefix}/teapot")
        def teapot() -> dict:
            raise HTTPException(status_code=418, detail="short and stout")

    @app.post("/v1/fleet/loop")
    async def loop() -> dict:
        return {"loop": threading.get_ident()}

    if scoped:
        app.add_middleware(handlers.InlineScope)
    return app


def test_plain_def_handlers_run_on_the_loop_only_under_the_prefixes(patched):
    with TestClient(_app()) as c:
        loop = c.post("/v1/fleet/loop").json()["loop"]
        for path in ("/v1/fleet/where", "/v1/runtime/where"):
            assert c.post(path).json() == {"endpoint": loop, "dependency": loop}, path
        control = c.post("/v1/control/where").json()
        assert control["endpoint"] != loop and control["dependency"] != loop
        # the mark does not outlive its request
        assert c.post("/v1/fleet/where").json()["endpoint"] == loop
        assert c.post("/v1/control/where").json()["endpoint"] != loop


def test_errors_and_answers_are_the_thread_pools(patched):
    answers = []
    for scoped in (False, True):
        with TestClient(_app(scoped)) as c:
            answers.append([(r.status_code, r.json()) for path in
                            ("/v1/fleet/teapot", "/v1/control/teapot", "/v1/fleet/nowhere")
                            for r in [c.post(path)]])
    assert answers[0] == answers[1]
    assert answers[1][0] == (418, {"detail": "short and stout"}) and answers[1][2][0] == 404


def test_without_the_layer_nothing_runs_on_the_loop(patched):
    with TestClient(_app(scoped=False)) as c:
        loop = c.post("/v1/fleet/loop").json()["loop"]
        assert c.post("/v1/fleet/where").json()["endpoint"] != loop


def test_supernode_app_answers_as_flowers(patched, monkeypatch):
    from flwr.proto.runtime_pb2 import PullTaskInputRequest
    from flwr.supernode import main as node_app

    stock_app = node_app.create_app()
    monkeypatch.setattr(node_app, "create_app", node_app.create_app)
    handlers.install_supernode()
    handlers.install_supernode()  # idempotent
    app = node_app.create_app()
    assert app.user_middleware[0].cls is handlers.InlineScope
    assert [m.cls for m in app.user_middleware[1:]] == [m.cls for m in stock_app.user_middleware]

    proto = {"content-type": "application/protobuf"}
    body = PullTaskInputRequest().SerializeToString()
    requests = [("/v1/runtime/acquire-task", b"", proto), ("/v1/runtime/pull-task-input", body, proto),
                ("/v1/runtime/pull-task-input", b"\xff\xff", proto),
                ("/v1/runtime/pull-task-input", body, {"content-type": "text/plain"})]
    answers = []
    for a in (stock_app, app):
        with TestClient(a) as c:
            answers.append([(r.status_code, r.content) for path, content, headers in requests
                            for r in [c.post(path, content=content, headers=headers)]]
                           + [(c.get("/health").status_code, b"")])
    assert answers[1] == answers[0]
    assert all(code >= 400 for code, _ in answers[1][:4]) and answers[1][4][0] == 200
