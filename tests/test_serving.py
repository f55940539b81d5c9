import socket
import threading
from pathlib import Path

import pytest
from transformers import AutoConfig

from companion import resources, serving
from companion.provision import ResourceError


@pytest.fixture(scope="module")
def server(provisioned):
    """The book's local server: transformers serve with SmolLM2 (the session's source), stopped after the module."""
    local = serving.LocalServer(str(resources.resolve("SmolLM2-135M-Instruct").location))
    with local:
        yield local
    assert local.process.poll() is not None


def test_unknown_model_is_a_clear_error(server):
    endpoint = serving.Endpoint(server.base_url, "no-such-model", local=True)
    with pytest.raises(ResourceError, match="refused the request for model 'no-such-model'"):
        endpoint.chat([{"role": "user", "content": "Hi"}], max_tokens=2)


def test_local_server_starts_answers_and_stops_freeing_its_port(server):  # runs after the tests that use it
    assert server.base_url.startswith("http://127.0.0.1:")
    assert serving.port_open(server.port)
    endpoint = serving.Endpoint(server.base_url, server.model, local=True)
    answer = endpoint.chat([{"role": "user", "content": "Say hello."}], max_tokens=5, temperature=0.0)
    assert isinstance(answer, str)
    if not hasattr(AutoConfig.from_pretrained(server.model), resources.STAND_IN):  # a random stand-in may
        assert answer.strip()  # answer blank lines
    log = Path(server._log.name)
    assert log.is_file()
    server.stop()
    assert server.process.poll() is not None
    assert not serving.port_open(server.port)
    assert not log.exists()  # the server's output file goes with it
    server.stop()  # a second stop is harmless


def test_chat_endpoint_stops_the_server_when_the_block_fails(provisioned, monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    started = []
    real_start = serving.LocalServer.start

    def spy(self):
        started.append(self)
        return real_start(self)

    monkeypatch.setattr(serving.LocalServer, "start", spy)
    with pytest.raises(RuntimeError, match="a cell failed"):
        with serving.chat_endpoint() as endpoint:
            assert endpoint.local and endpoint.model_label == "SmolLM2-135M-Instruct"
            raise RuntimeError("a cell failed")
    assert started[0].process.poll() is not None
    assert not serving.port_open(started[0].port)


def test_unreachable_server_is_a_clear_error():
    endpoint = serving.Endpoint(f"http://127.0.0.1:{serving.free_port()}/v1", "m", local=True, timeout=5)
    with pytest.raises(ResourceError, match="cannot reach http://127.0.0.1:.*is the server running"):
        endpoint.chat([{"role": "user", "content": "Hi"}])


def test_a_server_that_never_answers_times_out_with_a_clear_error():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted = []
    thread = threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True)
    thread.start()
    try:
        endpoint = serving.Endpoint(f"http://127.0.0.1:{listener.getsockname()[1]}/v1", "m", local=True,
                                    timeout=1)
        with pytest.raises(ResourceError, match="did not answer within 1 s"):
            endpoint.chat([{"role": "user", "content": "Hi"}])
    finally:
        for conn, _ in accepted:
            conn.close()
        listener.close()


def test_remote_endpoint_needs_a_key_and_never_shows_it(monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    assert serving.remote_endpoint() is None
    monkeypatch.setenv("OPENAI_BASE_URL", "https://api.example.invalid/v1/")
    monkeypatch.setenv("OPENAI_MODEL", "some-model")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    endpoint = serving.remote_endpoint()
    assert (endpoint.base_url, endpoint.model, endpoint.local) == ("https://api.example.invalid/v1", "some-model",
                                                                   False)
    with pytest.raises(ResourceError, match="set OPENAI_API_KEY"):
        endpoint.client()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-value")
    endpoint.client()
    assert "sk-secret-value" not in repr(endpoint)


def test_a_server_that_cannot_start_says_why(tmp_path):
    with pytest.raises(ResourceError, match="transformers serve exited"):
        serving.LocalServer(str(tmp_path), startup_timeout=120).start()  # a folder with no model in it


def test_a_busy_port_is_refused():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(ResourceError, match="already in use"):
            serving.LocalServer("unused", port=busy.getsockname()[1]).start()
