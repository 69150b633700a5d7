"""Settings: built once in the entry point and passed down (nothing reads them at import time).

Every field can be set with a `DULY_*` environment variable, e.g. `DULY_DATABASE_URL`,
`DULY_SMTP__HOST` (nested groups use a double underscore).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

CONFIG_DIR = Path(__file__).resolve().parent
PACKAGE_ROOT = CONFIG_DIR.parent


class SmtpGroup(BaseModel):
    """Outgoing mail. mode `catcher` starts the built-in mail catcher and sends to it."""

    mode: Literal["catcher", "smtp"] = "catcher"
    host: str = "127.0.0.1"
    port: int = Field(default=1025, ge=0, le=65535, description="0 picks a free port (catcher only)")
    security: Literal["none", "starttls", "tls"] = "none"
    username: str | None = None
    password: SecretStr | None = None
    timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    sender: str = "duly@localhost"
    ca_file: Path | None = Field(default=None, description="PEM file of the CA that signed the server's certificate "
                                                           "(an internal CA); default: the system's trust store")


class DeliveryGroup(BaseModel):
    """How the outbox is drained: retries, dead letters and rate limits (counted across all deliverers)."""

    max_attempts: int = Field(default=8, ge=1, le=100, description="dead-letter a message after this many tries")
    email_per_minute: int = Field(default=300, ge=0, le=1_000_000, description="0: no limit")
    chat_per_hook_per_minute: int = Field(default=20, ge=1, le=10_000,
                                          description="WeCom and DingTalk robots accept 20 a minute")
    chat_timeout_seconds: float = Field(default=10.0, gt=0, le=120)


class SchedulerGroup(BaseModel):
    """In-process schedule of the flows (embedded mode only; never in more than one process)."""

    enabled: bool = True
    sweep_seconds: int = Field(default=60, ge=5, le=3600)
    deliver_seconds: int = Field(default=30, ge=1, le=3600)
    materialise_cron: str = Field(default="0 1 * * *", description="crontab, in the settings' time zone")
    materialise_months_ahead: int = Field(default=2, ge=0, le=24)
    digest_cron: str = Field(default="*/15 * * * *", description="when to look for people whose digest time "
                                                                  "(person.digest_at) has come; working days only")
    report_cron: str = Field(default="0 9 * * mon", description="managers' escalation reports")
    housekeeping_cron: str = Field(default="30 3 * * *", description="purges and the audit chain check")

    @field_validator("materialise_cron", "digest_cron", "report_cron", "housekeeping_cron")
    @classmethod
    def _crontab(cls, value: str) -> str:
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(value)
        except ValueError as exc:
            raise ValueError(f'expected a crontab of 5 fields like "30 8 * * mon-fri", got "{value}": {exc}') from None
        return value


class PrefectGroup(BaseModel):
    """The Prefect server that records flow runs. `embedded` starts one as a child of `duly run`.

    Scaled mode (`external`): `duly deploy` registers the flows as deployments `<flow>/<deployment_name>`
    on the server at `api_url`, served by the process work pool `work_pool`, whose workers (`duly worker`)
    find the code in `code_dir`."""

    mode: Literal["embedded", "external"] = "embedded"
    api_url: str | None = Field(default=None, description="external mode: the server's /api URL "
                                                          "(default: PREFECT_API_URL)")
    port: int = Field(default=4200, ge=1, le=65535)
    work_pool: str = Field(default="duly", min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$",
                           description="the process work pool that `duly deploy` uses and `duly worker` serves")
    deployment_name: str = Field(default="duly", min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$",
                                 description="every deployment is `<flow>/<deployment_name>`; another name "
                                             "lets a second installation share the Prefect server")
    code_dir: Path | None = Field(default=None, description="where workers find the project (flows/...); "
                                                            "default: this installation's folder. Every worker "
                                                            "machine needs the code at this path")


class SessionGroup(BaseModel):
    """Signed-in browsers (cookie `duly_session`) and the limits on signing in."""

    idle_minutes: int = Field(default=8 * 60, ge=5, le=7 * 24 * 60, description="signed out after this long unused")
    lifetime_hours: int = Field(default=7 * 24, ge=1, le=90 * 24, description="signed out this long after sign-in")
    failures_per_account: int = Field(default=5, ge=1, le=1000, description="failed sign-ins per account per window")
    failures_per_address: int = Field(default=30, ge=1, le=100_000, description="failed sign-ins per client address")
    failure_window_minutes: int = Field(default=15, ge=1, le=24 * 60)


class OidcGroup(BaseModel):
    """Optional single sign-on with an OpenID Connect provider (authorisation code flow with PKCE).

    A person signs in when the provider's ID token carries `claim` (default `email`) equal, ignoring case,
    to the same field of an active person in duly. Register `<base_url>/login/oidc/callback` as the
    redirect URI at the provider."""

    enabled: bool = False
    server_metadata_url: str | None = Field(
        default=None, description="the discovery document; default <issuer>/.well-known/openid-configuration")
    issuer: str | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    scope: str = "openid email profile"
    claim: Literal["email", "sub", "preferred_username"] = Field(
        default="email", description="the ID token claim matched to a person (email: person.email; else person.id)")
    button_label: str = Field(default="统一身份认证登录", max_length=40)

    @property
    def metadata_url(self) -> str:
        if self.server_metadata_url:
            return self.server_metadata_url
        if not self.issuer:
            raise ValueError("oidc: set server_metadata_url or issuer")
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DULY_", env_nested_delimiter="__", extra="ignore")

    data_dir: Path = Field(default=Path(".data"), description="database, mail catcher, Prefect home")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default SQLite under data_dir (sqlite:///.data/duly.db)"
    )
    policy_paths: list[Path] = Field(default_factory=lambda: [PACKAGE_ROOT / "policies" / "library" / "hospital"],
                                     description="policy files or folders: one organisation profile")
    organisation_file: Path = Field(default=CONFIG_DIR / "demo-organisation.yaml")
    holidays_dir: Path = Field(default=CONFIG_DIR / "holidays")
    timezone: str = "Asia/Shanghai"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    base_url: str | None = Field(default=None, description="public URL used in e-mail links")
    demo: bool = Field(default=True, description="seed the demo organisation and demo passwords")
    attachment_max_bytes: int = Field(default=20 * 1024 * 1024, ge=1024, le=1024**3,
                                      description="largest attachment accepted (bytes)")
    smtp: SmtpGroup = Field(default_factory=SmtpGroup)
    delivery: DeliveryGroup = Field(default_factory=DeliveryGroup)
    scheduler: SchedulerGroup = Field(default_factory=SchedulerGroup)
    prefect: PrefectGroup = Field(default_factory=PrefectGroup)
    session: SessionGroup = Field(default_factory=SessionGroup)
    oidc: OidcGroup = Field(default_factory=OidcGroup)
    secret_key: SecretStr | None = Field(
        default=None, description="signs short-lived cookies (OIDC sign-in); default: generated once into "
                                  "<data_dir>/secret_key (mode 0600); set it when API replicas share no disk")

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'duly.db').as_posix()}"

    @property
    def public_url(self) -> str:
        return (self.base_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def maildir(self) -> Path:
        return self.data_dir / "mail"

    def server_secret(self) -> bytes:
        """`secret_key`, or the one generated and kept under the data directory (created at first use)."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value().encode()
        path = self.data_dir / "secret_key"
        try:
            return path.read_bytes().strip()
        except FileNotFoundError:
            pass
        path.parent.mkdir(parents=True, exist_ok=True)
        secret = secrets.token_urlsafe(48).encode()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first: use theirs
            return path.read_bytes().strip()
        with os.fdopen(fd, "wb") as out:
            out.write(secret)
        return secret
