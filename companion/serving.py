"""An OpenAI-compatible chat endpoint: a local ``transformers serve`` process the companion starts
and stops, or the endpoint named by ``OPENAI_BASE_URL`` / ``OPENAI_API_KEY``.

The local server binds 127.0.0.1 on a free port and is always stopped by the code that started it:
use it as a context manager (``with LocalServer(...) as server:``); an ``atexit`` hook stops it too
if the interpreter ends first.
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .provision import ResourceError, say

HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def port_open(port: int, host: str = HOST) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) == 0


class LocalServer:
    """``transformers serve <model>`` on 127.0.0.1, started on enter and stopped on exit."""

    def __init__(self, model: str, port: int | None = None, startup_timeout: float = 300.0,
                 device: str = "cpu") -> None:
        self.model, self.port, self.device = model, port or free_port(), device
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen | None = None
        self._log = None  # the server's output, in a temporary file while it runs

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}/v1"

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{HOST}:{self.port}/health", timeout=2) as reply:
                return reply.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def log_tail(self, chars: int = 2_000) -> str:
        """The end of the server's own output (it is written to a temporary file)."""
        return Path(self._log.name).read_text(errors="replace")[-chars:] if self._log else ""

    def start(self) -> LocalServer:
        """Start the process and wait until ``/health`` answers; raise with its log if it does not."""
        if port_open(self.port):
            raise ResourceError(f"port {self.port} on {HOST} is already in use; pick another")
        self._log = tempfile.NamedTemporaryFile(prefix="transformers-serve-", suffix=".log", delete=False)
        env = {**os.environ, "HF_HUB_DISABLE_UPDATE_CHECK": "1", "TOKENIZERS_PARALLELISM": "false"}
        if Path(self.model).is_dir():
            env["HF_HUB_OFFLINE"] = "1"  # a local folder needs no hub
        cmd = [sys.executable, "-m", "transformers.cli.transformers", "serve", self.model, "--host", HOST,
               "--port", str(self.port), "--device", self.device]
        say(f"starting transformers serve on {HOST}:{self.port} for {Path(self.model).name}")
        self.process = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env,
                                        start_new_session=True)  # its own process group, stopped as one
        atexit.register(self.stop)
        deadline = time.monotonic() + self.startup_timeout
        while not self._healthy():
            if self.process.poll() is not None:
                tail = self.log_tail()
                self.stop()
                raise ResourceError(f"transformers serve exited with code {self.process.returncode}"
                                    f" (needs `pip install transformers[serving]`?):\n{tail}")
            if time.monotonic() > deadline:
                tail = self.log_tail()
                self.stop()
                raise ResourceError(f"transformers serve did not answer within {self.startup_timeout:.0f} s:\n"
                                    f"{tail}")
            time.sleep(0.5)
        say(f"server ready at {self.base_url}")
        return self

    def stop(self) -> None:
        """Stop the server's process group (terminate, then kill after 10 s) and delete its log.
        Safe to call twice."""
        if self.process is not None and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
            except ProcessLookupError:
                pass
            say(f"server on {HOST}:{self.port} stopped")
        if self._log is not None:
            self._log.close()
            Path(self._log.name).unlink(missing_ok=True)
            self._log = None

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Endpoint:
    """Where chat requests go: a base URL and a model name, reached with the ``openai`` client. The API
    key stays in the environment (``OPENAI_API_KEY``) and is never stored here or printed; the local
    server checks none."""

    def __init__(self, base_url: str, model: str, local: bool, timeout: float = 120.0) -> None:
        self.base_url, self.model, self.local, self.timeout = base_url.rstrip("/"), model, local, timeout
        self._client = None

    @property
    def model_label(self) -> str:
        """The model's short name (a local folder's name rather than its full path)."""
        return Path(self.model).name if self.local else self.model

    def __repr__(self) -> str:
        return f"Endpoint({self.base_url}, model={self.model_label}, {'local' if self.local else 'remote'})"

    def client(self):  # -> openai.OpenAI
        """The ``openai.OpenAI`` client for this endpoint (made once)."""
        if self._client is None:
            from openai import OpenAI

            key = os.environ.get("OPENAI_API_KEY") or ("none" if self.local else None)
            if key is None:
                raise ResourceError(f"{self.base_url} needs an API key: set OPENAI_API_KEY in the environment"
                                    " (it is read from there and never printed).")
            self._client = OpenAI(base_url=self.base_url, api_key=key, timeout=self.timeout, max_retries=0)
        return self._client

    def chat(self, messages: list[dict[str, str]], **options: object) -> str:
        """Send one chat completion request and return the answer's text. Unreachable server, timeout
        and refused requests (unknown model, bad key) raise :class:`ResourceError` saying which."""
        import openai

        try:
            reply = self.client().chat.completions.create(model=self.model, messages=messages, **options)
        except openai.APITimeoutError:
            raise ResourceError(f"{self.base_url} did not answer within {self.timeout:.0f} s") from None
        except openai.APIConnectionError:
            raise ResourceError(f"cannot reach {self.base_url}: is the server running?") from None
        except openai.AuthenticationError:
            raise ResourceError(f"{self.base_url} refused the API key in OPENAI_API_KEY") from None
        except openai.APIStatusError as error:
            detail = error.body.get("detail") if isinstance(error.body, dict) else None
            raise ResourceError(f"{self.base_url} refused the request for model {self.model_label!r}"
                                f" (HTTP {error.status_code}): {str(detail or error.message)[:300]}") from None
        return reply.choices[0].message.content or ""


def remote_endpoint(default_model: str = "gpt-4o-mini") -> Endpoint | None:
    """The endpoint named by ``OPENAI_BASE_URL`` (model: ``OPENAI_MODEL`` or ``default_model``), or
    ``None`` when the variable is not set."""
    url = os.environ.get("OPENAI_BASE_URL", "").strip()
    if not url:
        return None
    return Endpoint(url, os.environ.get("OPENAI_MODEL", default_model), local=False)


@contextmanager
def chat_endpoint(model: str = "SmolLM2-135M-Instruct") -> Iterator[Endpoint]:
    """The endpoint the prompting chapter talks to: the one named by ``OPENAI_BASE_URL`` when set,
    otherwise a local ``transformers serve`` of ``model`` (a role or model name, resolved as
    everywhere in the book), stopped when the ``with`` block ends, even on error."""
    remote = remote_endpoint()
    if remote is not None:
        say(f"chat endpoint: {remote.base_url} (from OPENAI_BASE_URL), model {remote.model}")
        yield remote
        return
    from .resources import resolve

    location = resolve(model).location
    with LocalServer(location) as server:
        yield Endpoint(server.base_url, location, local=True)
