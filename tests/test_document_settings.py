"""TRUSTED_DOCUMENTS and PERSISTED_DOCUMENTS_*: defaults by environment, and what is refused."""

import secrets

import pytest
from pydantic import ValidationError

from api.documents import DocumentLimits
from api.settings import Settings
from tests.conftest import make_settings

URL = "postgresql://app@127.0.0.1/catalog"
TOKEN = secrets.token_urlsafe(32)


def test_production_runs_only_stored_documents_unless_told_otherwise() -> None:
    assert make_settings(URL, api_env="production", api_token=TOKEN).trusted_documents == "require"


def test_development_runs_any_document() -> None:
    assert make_settings(URL).trusted_documents == "off"


@pytest.mark.parametrize(
    ("given", "mode"), [("log", "log"), (" OFF ", "off"), ("Require", "require")]
)
def test_an_explicit_mode_wins_in_either_environment(given: str, mode: str) -> None:
    production = make_settings(URL, api_env="production", api_token=TOKEN, trusted_documents=given)
    development = make_settings(URL, trusted_documents=given)
    assert (production.trusted_documents, development.trusted_documents) == (mode, mode)


def test_the_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_ENV", "production")
    monkeypatch.setenv("API_TOKEN", TOKEN)
    monkeypatch.setenv("TRUSTED_DOCUMENTS", "")
    monkeypatch.setenv("PERSISTED_DOCUMENTS_MAX_BYTES", "2048")
    monkeypatch.setenv("PERSISTED_DOCUMENTS_MAX_COUNT", "0")
    settings = Settings(_env_file=None, database_url=URL)

    assert settings.trusted_documents == "require"  # empty counts as unset
    assert settings.options(DocumentLimits) == DocumentLimits(max_bytes=2048, max_count=0)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"trusted_documents": "strict"}, "trusted_documents"),
        ({"persisted_documents_max_bytes": 1024 * 1024 + 1}, "persisted_documents_max_bytes"),
        ({"persisted_documents_max_bytes": 0}, "persisted_documents_max_bytes"),
        ({"persisted_documents_max_count": -1}, "persisted_documents_max_count"),
    ],
)
def test_values_out_of_bounds_are_refused(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        make_settings(URL, **overrides)
    assert [error["loc"] for error in refused.value.errors()] == [(field,)]
