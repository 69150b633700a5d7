"""Settings: built once in the entry point and passed down (nothing reads them at import time).

Every field can be set with a `DULY_*` environment variable, e.g. `DULY_DATABASE_URL`,
`DULY_SMTP__HOST` (nested groups use a double underscore).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr
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


class SchedulerGroup(BaseModel):
    """In-process schedule of the flows (embedded mode only; never in more than one process)."""

    enabled: bool = True
    sweep_seconds: int = Field(default=60, ge=5, le=3600)
    deliver_seconds: int = Field(default=30, ge=1, le=3600)
    materialise_cron_hour: int = Field(default=1, ge=0, le=23)
    materialise_months_ahead: int = Field(default=2, ge=0, le=24)


class PrefectGroup(BaseModel):
    """The Prefect server that records flow runs. `embedded` starts one as a child of `duly run`."""

    mode: Literal["embedded", "external"] = "embedded"
    api_url: str | None = Field(default=None, description="external mode: the server's /api URL")
    port: int = Field(default=4200, ge=1, le=65535)


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
    smtp: SmtpGroup = Field(default_factory=SmtpGroup)
    scheduler: SchedulerGroup = Field(default_factory=SchedulerGroup)
    prefect: PrefectGroup = Field(default_factory=PrefectGroup)

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'duly.db').as_posix()}"

    @property
    def public_url(self) -> str:
        return (self.base_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def maildir(self) -> Path:
        return self.data_dir / "mail"
