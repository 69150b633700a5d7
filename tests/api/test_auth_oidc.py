"""OIDC sign-in against a tiny but real OpenID provider served on loopback: discovery, JWKS, an authorize
endpoint that redirects back with a code, and a token endpoint that checks PKCE and client credentials and
issues an RS256 ID token. The ID token can be tampered with (nonce, audience, signing key) per test."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Form, HTTPException, Request
from fastapi.responses import RedirectResponse
from joserfc import jwt
from joserfc.jwk import RSAKey

from config.settings import Settings
from notifications.catcher import free_port
from tests.api.auth_helpers import audit_events

CLIENT_ID, CLIENT_SECRET = "duly-test", "provider-shared-secret"


@dataclass
class Provider:
    url: str
    email: str = "He.Jing@Hospital.Example"  # he.jing's address in another case
    tamper: dict[str, Any] = field(default_factory=dict)
    sign_with: RSAKey | None = None  # a key not in the JWKS: a forged signature
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "k1"}))


def provider_app(provider: Provider) -> FastAPI:
    app = FastAPI()

    @app.get("/.well-known/openid-configuration")
    async def discovery() -> dict[str, Any]:
        return {"issuer": provider.url, "authorization_endpoint": f"{provider.url}/authorize",
                "token_endpoint": f"{provider.url}/token", "jwks_uri": f"{provider.url}/jwks",
                "response_types_supported": ["code"], "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic"],
                "code_challenge_methods_supported": ["S256"]}

    @app.get("/jwks")
    async def jwks() -> dict[str, Any]:
        return {"keys": [provider.key.as_dict(private=False)]}

    @app.get("/authorize")
    async def authorize(client_id: str, redirect_uri: str, response_type: str, state: str, nonce: str,
                        code_challenge: str, code_challenge_method: str, scope: str) -> RedirectResponse:
        if client_id != CLIENT_ID or response_type != "code" or code_challenge_method != "S256" \
                or "openid" not in scope.split():
            raise HTTPException(400, "bad authorisation request")
        code = secrets.token_urlsafe(16)
        provider.codes[code] = {"nonce": nonce, "challenge": code_challenge, "redirect_uri": redirect_uri}
        return RedirectResponse(f"{redirect_uri}?{urlencode({'code': code, 'state': state})}", status_code=302)

    @app.post("/token")
    async def token(request: Request, grant_type: str = Form(), code: str = Form(), redirect_uri: str = Form(),
                    code_verifier: str = Form()) -> dict[str, Any]:
        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if request.headers.get("authorization") != expected:
            raise HTTPException(401, "client authentication failed")
        issued = provider.codes.pop(code, None)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(code_verifier.encode()).digest()).rstrip(b"=").decode()
        if grant_type != "authorization_code" or issued is None or issued["redirect_uri"] != redirect_uri \
                or issued["challenge"] != challenge:
            raise HTTPException(400, "invalid_grant")
        now = int(time.time())
        claims = {"iss": provider.url, "sub": "u-1001", "aud": CLIENT_ID, "iat": now, "exp": now + 300,
                  "nonce": issued["nonce"], "email": provider.email, "email_verified": True, **provider.tamper}
        id_token = jwt.encode({"alg": "RS256", "kid": "k1"}, claims, provider.sign_with or provider.key)
        return {"access_token": secrets.token_urlsafe(16), "token_type": "Bearer", "id_token": id_token}

    return app


@pytest.fixture
def provider() -> Iterator[Provider]:
    port = free_port()
    found = Provider(url=f"http://127.0.0.1:{port}")
    server = uvicorn.Server(uvicorn.Config(provider_app(found), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the test OIDC provider did not start"
        time.sleep(0.05)
    yield found
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def settings(database_url, tmp_path, mail, provider) -> Settings:  # type: ignore[no-untyped-def]
    return Settings(data_dir=tmp_path / "data", database_url=database_url, demo=True,
                    smtp={"mode": "smtp", "host": mail.host, "port": mail.port, "security": "none"},
                    scheduler={"enabled": False}, prefect={"mode": "external"},
                    oidc={"enabled": True, "issuer": provider.url, "client_id": CLIENT_ID,
                          "client_secret": CLIENT_SECRET})


def sign_in_through_provider(server, next_path: str = "/calendar") -> tuple[httpx.Client, httpx.Response]:  # type: ignore[no-untyped-def]
    client = httpx.Client(base_url=server.url, timeout=30, follow_redirects=True)
    return client, client.get("/login/oidc", params={"next": next_path})


async def test_provider_sign_in_lands_on_next_with_a_session(live_server, provider, runtime):
    with httpx.Client(base_url=live_server.url) as client:
        assert "统一身份认证登录" in client.get("/login").text  # the button shows when OIDC is on
    client, answer = sign_in_through_provider(live_server)
    with closing(client):
        assert answer.status_code == 200, answer.text[:300]
        assert answer.url.path == "/calendar"
        assert [r.url.path for r in answer.history] == ["/login/oidc", "/authorize", "/login/oidc/callback"]
        assert "何静" in answer.text
        assert client.get("/api/me").json()["id"] == "he.jing"
    assert provider.codes == {}  # the code was redeemed
    (event,) = await audit_events(runtime, "auth.signed_in")
    assert event.actor_id == "he.jing" and event.data["method"] == "oidc"
    # the flow cookie is signed by the secret generated under the data directory, readable by us only
    secret_file = live_server.settings.data_dir / "secret_key"
    assert secret_file.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("tamper", [{"nonce": "replayed-nonce"}, {"aud": "another-client"},
                                    {"iss": "http://127.0.0.1:1"}, {"exp": 1_000_000_000}],
                         ids=["nonce", "audience", "issuer", "expired"])
async def test_id_tokens_that_do_not_check_out_are_refused(live_server, provider, runtime, tamper):
    provider.tamper = tamper
    client, answer = sign_in_through_provider(live_server)
    with closing(client):
        assert answer.status_code == 400 and "无法验证" in answer.text
        assert "duly_session" not in client.cookies
        assert client.get("/api/me").status_code == 401
    assert await audit_events(runtime, "auth.signed_in") == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_token_signed_with_a_key_not_in_the_jwks_is_refused(live_server, provider):
    provider.sign_with = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    client, answer = sign_in_through_provider(live_server)
    with closing(client):
        assert answer.status_code == 400 and "duly_session" not in client.cookies


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_address_nobody_has_is_refused_with_403(live_server, provider):
    provider.email = "stranger@elsewhere.example"
    client, answer = sign_in_through_provider(live_server)
    with closing(client):
        assert answer.status_code == 403 and "未在 duly 中登记" in answer.text


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_callback_without_our_flow_cookie_is_refused(live_server, provider):
    with httpx.Client(base_url=live_server.url, timeout=30) as client:
        answer = client.get("/login/oidc/callback", params={"code": "stolen", "state": "guessed"})
    assert answer.status_code == 400 and "已过期或无效" in answer.text
