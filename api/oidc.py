"""Optional sign-in with an OpenID Connect provider: the authorisation code flow with PKCE.

GET /login/oidc sends the browser to the provider with a fresh `state`, `nonce` and PKCE verifier, kept
in a short-lived HttpOnly cookie signed with the server secret (HMAC-SHA256). GET /login/oidc/callback
checks the state, exchanges the code (with the verifier), validates the ID token — signature against the
provider's JWKS, issuer, audience, expiry, nonce — and signs in the active person whose e-mail (or the
configured claim) matches, ignoring case. When OIDC is disabled both routes answer 404.

JOSE work is done by joserfc (authlib's JOSE library; `authlib.jose` is deprecated) and the ID token's
claims are checked by authlib's `CodeIDToken`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import time
from typing import Any
from urllib.parse import urlencode

import httpx
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core import CodeIDToken
from fastapi import APIRouter, HTTPException, Request, Response, status
from fastapi.responses import RedirectResponse
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from api.auth import safe_next, secure_cookies, set_session_cookie, settings_of
from api.signin import login_page, sign_in
from config import clock
from config.settings import OidcGroup
from store.accounts import person_by_claim

router = APIRouter(include_in_schema=False)
log = logging.getLogger("duly.oidc")
FLOW_COOKIE = "duly_oidc"
FLOW_PATH = "/login/oidc"
FLOW_SECONDS = 600
METADATA_SECONDS = 3600
ASYMMETRIC = {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}


class OidcError(Exception):
    """The provider's answer cannot be trusted or used; the message is shown on the login page."""


def _group(http: Request) -> OidcGroup:
    group = settings_of(http).oidc
    if not group.enabled or not group.client_id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="OIDC sign-in is not enabled")
    return group


def _secret(http: Request) -> bytes:
    key = getattr(http.app.state, "server_secret", None)
    if key is None:
        key = http.app.state.server_secret = settings_of(http).server_secret()
    return key


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_flow(key: bytes, flow: dict[str, Any]) -> str:
    payload = _b64(json.dumps(flow, separators=(",", ":")).encode())
    return f"{payload}.{_b64(hmac.new(key, f'duly-oidc.{payload}'.encode(), hashlib.sha256).digest())}"


def read_flow(key: bytes, value: str | None, *, now: float) -> dict[str, Any] | None:
    """The flow cookie's content if its signature is ours and it has not expired; else None."""
    if not value or value.count(".") != 1:
        return None
    payload, signature = value.split(".")
    expected = _b64(hmac.new(key, f"duly-oidc.{payload}".encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(signature, expected):
        return None
    try:
        flow = json.loads(_unb64(payload))
    except ValueError:
        return None
    return flow if isinstance(flow, dict) and flow.get("exp", 0) > now else None


async def _metadata(http: Request, group: OidcGroup) -> dict[str, Any]:
    cached = getattr(http.app.state, "oidc_metadata", None)
    if cached and cached[0] > time.monotonic():
        return cached[1]
    async with httpx.AsyncClient(timeout=10) as client:
        answer = await client.get(group.metadata_url)
    if answer.status_code != 200:
        raise OidcError(f"the provider's discovery document answered {answer.status_code}")
    metadata = answer.json()
    for key in ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri"):
        if not isinstance(metadata.get(key), str):
            raise OidcError(f"the provider's discovery document has no {key}")
    if group.issuer and metadata["issuer"].rstrip("/") != group.issuer.rstrip("/"):
        raise OidcError(f"the discovery document names issuer {metadata['issuer']}, not {group.issuer}")
    http.app.state.oidc_metadata = (time.monotonic() + METADATA_SECONDS, metadata)
    return metadata


def _redirect_uri(http: Request) -> str:
    base = settings_of(http).base_url or str(http.base_url)
    return base.rstrip("/") + f"{FLOW_PATH}/callback"


@router.get(FLOW_PATH)
async def start(http: Request, next: str = "") -> Response:
    group = _group(http)
    try:
        metadata = await _metadata(http, group)
    except (OidcError, httpx.HTTPError, ValueError) as exc:
        log.warning("OIDC discovery failed: %s", exc)
        return _failed(http, "无法连接统一身份认证服务，请稍后再试或使用账号密码登录。")
    flow = {"state": secrets.token_urlsafe(24), "nonce": secrets.token_urlsafe(24),
            "verifier": secrets.token_urlsafe(48), "next": safe_next(next),
            "exp": int(clock.now().timestamp()) + FLOW_SECONDS}
    query = urlencode({"response_type": "code", "client_id": group.client_id, "redirect_uri": _redirect_uri(http),
                       "scope": group.scope, "state": flow["state"], "nonce": flow["nonce"],
                       "code_challenge": create_s256_code_challenge(flow["verifier"]),
                       "code_challenge_method": "S256"})
    endpoint = metadata["authorization_endpoint"]
    answer = RedirectResponse(f"{endpoint}{'&' if '?' in endpoint else '?'}{query}", status_code=303)
    answer.set_cookie(FLOW_COOKIE, sign_flow(_secret(http), flow), max_age=FLOW_SECONDS, path=FLOW_PATH,
                      httponly=True, samesite="lax", secure=secure_cookies(http))
    return answer


@router.get(f"{FLOW_PATH}/callback")
async def callback(http: Request, state: str = "", code: str = "", error: str = "") -> Response:
    group = _group(http)
    flow = read_flow(_secret(http), http.cookies.get(FLOW_COOKIE), now=clock.now().timestamp())
    if error:
        return _failed(http, f"统一身份认证未完成（{error[:80]}）。")
    if flow is None or not state or not hmac.compare_digest(state, str(flow.get("state", ""))) or not code:
        return _failed(http, "登录请求已过期或无效，请重新登录。")
    try:
        claims = await _claims(http, group, code=code, flow=flow)
    except (OidcError, JoseError, httpx.HTTPError, ValueError) as exc:
        log.warning("OIDC sign-in refused: %s", exc)
        return _failed(http, "统一身份认证返回的身份无法验证，请重新登录。")
    value = claims.get(group.claim)
    if group.claim == "email" and claims.get("email_verified") is False:
        value = None
    async with http.app.state.runtime.read_sessions() as session:
        person = await person_by_claim(session, group.claim, value) if isinstance(value, str) and value else None
    if person is None:
        return _failed(http, "该身份未在 duly 中登记或账号已停用，请联系管理员。", status_code=403)
    secret, _ = await sign_in(http, person, method="oidc")
    answer = RedirectResponse(flow["next"], status_code=status.HTTP_303_SEE_OTHER)
    set_session_cookie(answer, http, secret)
    answer.delete_cookie(FLOW_COOKIE, path=FLOW_PATH, httponly=True, samesite="lax", secure=secure_cookies(http))
    return answer


async def _claims(http: Request, group: OidcGroup, *, code: str, flow: dict[str, Any]) -> CodeIDToken:
    metadata = await _metadata(http, group)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": _redirect_uri(http),
            "code_verifier": flow["verifier"], "client_id": group.client_id}
    secret = group.client_secret.get_secret_value() if group.client_secret else None
    auth = None
    methods = metadata.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    if secret and "client_secret_basic" in methods:
        auth = httpx.BasicAuth(group.client_id or "", secret)
    elif secret:
        form["client_secret"] = secret
    async with httpx.AsyncClient(timeout=10) as client:
        answer = await client.post(metadata["token_endpoint"], data=form, auth=auth,
                                   headers={"Accept": "application/json"})
        if answer.status_code != 200:
            raise OidcError(f"the token endpoint answered {answer.status_code}: {answer.text[:200]}")
        tokens = answer.json()
        if not isinstance(tokens.get("id_token"), str):
            raise OidcError("the token endpoint returned no id_token")
        jwks = (await client.get(metadata["jwks_uri"])).json()
    algorithms = [a for a in metadata.get("id_token_signing_alg_values_supported") or ["RS256"] if a in ASYMMETRIC]
    token = jwt.decode(tokens["id_token"], KeySet.import_key_set(jwks), algorithms=algorithms)
    claims = CodeIDToken(token.claims, token.header,
                         {"iss": {"essential": True, "value": metadata["issuer"]},
                          "aud": {"essential": True, "value": group.client_id}},
                         {"nonce": flow["nonce"], "client_id": group.client_id,
                          "access_token": tokens.get("access_token")})
    claims.validate(now=int(clock.now().timestamp()), leeway=60)
    return claims


def _failed(http: Request, message: str, status_code: int = 400) -> Response:
    answer = login_page(http, next_path="/inbox", error=message, status_code=status_code)
    answer.delete_cookie(FLOW_COOKIE, path=FLOW_PATH, httponly=True, samesite="lax", secure=secure_cookies(http))
    return answer
