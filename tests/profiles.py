"""Settings for one profile of the shipped library (policies/library/<profile>), for tests that need an
organisation other than the demo hospital's."""

from __future__ import annotations

from pathlib import Path

from config.settings import Settings

LIBRARY = Path(__file__).resolve().parents[1] / "policies" / "library"


def profile_settings(profile: str, database_url: str, data_dir: Path, **overrides: object) -> Settings:
    """The profile's policies and organisation, demo passwords, no scheduler, an external Prefect."""
    folder = LIBRARY / profile
    return Settings(data_dir=data_dir, database_url=database_url, demo=True, policy_paths=[folder],
                    organisation_file=folder / "organisation.yaml", scheduler={"enabled": False},
                    prefect={"mode": "external"}, **overrides)  # type: ignore[arg-type]
