"""AWS test doubles for the Bedrock end-to-end tests: a moto STS server behind a recorder, and
the mock Bedrock (mock_bedrock.py) wired to it. Import the fixtures into a test module:

    from aws_fixtures import bedrock_mock, sts  # noqa: F401 (pytest fixtures)

  sts            a started Sts: moto_server on 127.0.0.1, reached through a recording proxy
                 (`sts.url` is what AWS_ENDPOINT_URL_STS should be). Every call is in
                 `sts.calls` (action, parameters, the credentials it issued); issued
                 credentials are announced to the mock Bedrock, with their expiry.
  bedrock_mock   a started MockBedrock for REGION, accepting the static keys STATIC_KEYS and
                 every credential `sts` issues.

moto accepts any web identity token and any role ARN, and echoes the session name in the
assumed-role ARN; it honours DurationSeconds (even below STS's minimum of 900 when the call is
not made through botocore), which is how short-lived credentials are minted for refresh tests.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import parse_qs

import boto3
import pytest
import requests

from mock_bedrock import MockBedrock
from ogx_harness import PORT_ATTEMPTS, free_port, lost_port_race, wait_until

REGION = "us-west-2"
MODEL_ID = "openai.gpt-oss-20b-1:0"
ROLE_ARN = "arn:aws:iam::123456789012:role/ogx-bedrock-test"


@dataclass(frozen=True)
class StaticKeys:
    access_key_id: str
    secret_access_key: str


STATIC_KEYS = StaticKeys("AKIAOGXSTATICTEST001", "ogx/static/test/secret/0000000000000000000")

# The host's credential-refresh windows (seconds before expiry), overridable for tests; the
# production defaults follow botocore: 900 advisory, 600 mandatory.
REFRESH_ADVISORY_ENV = "OGX_AWS_REFRESH_ADVISORY_SECS"
REFRESH_MANDATORY_ENV = "OGX_AWS_REFRESH_MANDATORY_SECS"


# -- STS -----------------------------------------------------------------------------------

@dataclass
class StsCall:
    """One STS request as the recorder forwarded it, and what moto answered."""
    action: str
    params: dict[str, str]
    status: int
    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None
    expiration: dt.datetime | None = None
    assumed_role_arn: str | None = None
    # The access key id that signed the call (AssumeRole), None when unsigned (web identity).
    signed_by: str | None = None
    time: float = field(default_factory=time.time)


def _xml_field(xml: str, name: str) -> str | None:
    m = re.search(rf"<{name}>([^<]*)</{name}>", xml)
    return m.group(1) if m else None


def _parse_time(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return dt.datetime.fromtimestamp(float(text), dt.timezone.utc)
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


class _Recorder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_RecorderServer"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        forwarded = {k: v for k, v in self.headers.items()
                     if k.lower() not in ("host", "content-length", "connection")}
        upstream = urllib.request.Request(self.server.moto_url + self.path, data=body,
                                          headers=forwarded, method="POST")
        try:
            with urllib.request.urlopen(upstream, timeout=30) as r:
                status, answer, ctype = r.status, r.read(), r.headers.get("Content-Type", "")
        except urllib.error.HTTPError as e:
            status, answer, ctype = e.code, e.read(), e.headers.get("Content-Type", "")
        signer = re.search(r"Credential=([^/]+)/", self.headers.get("Authorization", ""))
        self.server.record(body, self.headers.get("Content-Type", ""), status,
                           answer.decode("utf-8", "replace"), signer.group(1) if signer else None)
        self.send_response(status)
        self.send_header("Content-Type", ctype or "text/xml")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)


class _RecorderServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, moto_url: str) -> None:
        super().__init__(("127.0.0.1", 0), _Recorder)
        self.moto_url = moto_url
        self.calls: list[StsCall] = []
        self.listeners: list[Callable[[StsCall], None]] = []
        self.lock = threading.Lock()

    def record(self, body: bytes, ctype: str, status: int, answer: str,
               signed_by: str | None) -> None:
        if "json" in ctype:
            params = {k: str(v) for k, v in json.loads(body or b"{}").items()}
            action = params.get("Action", "")
            creds = (json.loads(answer or "{}").get("Credentials") or {}) if status == 200 else {}
            call = StsCall(action, params, status, creds.get("AccessKeyId"),
                           creds.get("SecretAccessKey"), creds.get("SessionToken"),
                           _parse_time(str(creds["Expiration"])) if "Expiration" in creds else None)
        else:
            params = {k: v[0] for k, v in parse_qs(body.decode()).items()}
            call = StsCall(params.get("Action", ""), params, status,
                           _xml_field(answer, "AccessKeyId"), _xml_field(answer, "SecretAccessKey"),
                           _xml_field(answer, "SessionToken"),
                           _parse_time(_xml_field(answer, "Expiration")))
            arn = re.search(r"<AssumedRoleUser>.*?<Arn>([^<]*)</Arn>", answer, re.S)
            call.assumed_role_arn = arn.group(1) if arn else None
        call.signed_by = signed_by
        with self.lock:
            self.calls.append(call)
            listeners = list(self.listeners)
        if call.access_key_id:
            for listener in listeners:
                listener(call)


class Sts:
    """moto's STS behind a recorder. `url` for AWS_ENDPOINT_URL_STS, `moto_url` for direct
    calls (e.g. GetCallerIdentity with credentials the host obtained)."""

    def __init__(self) -> None:
        self.port = 0
        self.moto_url = ""
        self._proc: subprocess.Popen | None = None
        self._recorder = _RecorderServer(self.moto_url)
        self._thread: threading.Thread | None = None
        self.log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._recorder.server_address[1]}"

    @property
    def calls(self) -> list[StsCall]:
        with self._recorder.lock:
            return list(self._recorder.calls)

    def assume_calls(self) -> list[StsCall]:
        return [c for c in self.calls if c.action.startswith("AssumeRole")]

    def on_issue(self, listener: Callable[[StsCall], None]) -> None:
        with self._recorder.lock:
            self._recorder.listeners.append(listener)

    def start(self, log_dir: Path) -> "Sts":
        self.log_path = log_dir / "moto_server.log"
        command = ([shutil.which("moto_server")] if shutil.which("moto_server")
                   else [sys.executable, "-m", "moto.server"])
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                   AWS_DEFAULT_REGION=REGION)
        for attempt in range(PORT_ATTEMPTS):
            self.port = free_port()
            self.moto_url = f"http://127.0.0.1:{self.port}"
            self._recorder.moto_url = self.moto_url
            with open(self.log_path, "wb") as log:
                self._proc = subprocess.Popen([*command, "-H", "127.0.0.1", "-p", str(self.port)],
                                              stdout=log, stderr=subprocess.STDOUT, env=env,
                                              start_new_session=True)
            try:
                wait_until(self._moto_up, 30, "moto_server to answer")
                break
            except AssertionError:
                if attempt + 1 < PORT_ATTEMPTS and lost_port_race(self.log_path.read_text()):
                    continue
                raise
        self._thread = threading.Thread(target=self._recorder.serve_forever, args=(0.05,),
                                        daemon=True, name="sts-recorder")
        self._thread.start()
        return self

    def _moto_up(self) -> bool:
        if self._proc.poll() is not None:
            raise AssertionError(f"moto_server exited:\n{self.log_path.read_text()}")
        try:
            return requests.get(self.moto_url + "/moto-api/", timeout=1).ok
        except requests.RequestException:
            return False

    def stop(self) -> None:
        if self._thread is not None:
            self._recorder.shutdown()
            self._thread.join(timeout=10)
            self._thread = None
        self._recorder.server_close()
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=10)

    def client(self, access_key_id: str = "testing", secret_access_key: str = "testing",
               session_token: str | None = None):
        """A boto3 STS client talking to moto directly."""
        return boto3.client("sts", region_name=REGION, endpoint_url=self.moto_url,
                            aws_access_key_id=access_key_id,
                            aws_secret_access_key=secret_access_key,
                            aws_session_token=session_token)

    def caller_arn(self, access_key_id: str, session_token: str | None = None) -> str:
        """GetCallerIdentity with a key the host used: moto answers the assumed-role ARN,
        which ends with the role session name."""
        return self.client(access_key_id, "unchecked-by-moto", session_token) \
            .get_caller_identity()["Arn"]


@pytest.fixture
def sts(tmp_path: Path) -> Iterator[Sts]:
    server = Sts().start(tmp_path)
    try:
        yield server
    finally:
        server.stop()


# -- mock Bedrock --------------------------------------------------------------------------

def started_mock() -> MockBedrock:
    """A started MockBedrock for REGION that accepts STATIC_KEYS; stop it yourself (or use it
    as a context manager)."""
    mock = MockBedrock(region=REGION).start()
    mock.add_credentials(STATIC_KEYS.access_key_id, STATIC_KEYS.secret_access_key)
    return mock


@pytest.fixture
def bedrock_mock(request: pytest.FixtureRequest) -> Iterator[MockBedrock]:
    """The mock Bedrock for REGION. When the test also uses `sts`, it accepts what STS
    issues (until the credentials expire)."""
    with started_mock() as mock:
        if "sts" in request.fixturenames:
            sts_server: Sts = request.getfixturevalue("sts")
            mock.moto_url = sts_server.moto_url
            sts_server.on_issue(lambda call: mock.add_credentials(
                call.access_key_id, call.secret_access_key, call.session_token,
                call.expiration.timestamp() if call.expiration else None))
        yield mock


def endpoint_env(mock: MockBedrock) -> dict[str, str]:
    """Points the plugin's three Bedrock endpoints at the mock."""
    return {"AWS_ENDPOINT_URL_BEDROCK_RUNTIME": mock.url, "AWS_ENDPOINT_URL_BEDROCK": mock.url,
            "AWS_ENDPOINT_URL_BEDROCK_MANTLE": mock.url}


def static_keys_env() -> dict[str, str]:
    return {"AWS_ACCESS_KEY_ID": STATIC_KEYS.access_key_id,
            "AWS_SECRET_ACCESS_KEY": STATIC_KEYS.secret_access_key}
