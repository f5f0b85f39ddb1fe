"""Options objects take their defaults from `Settings` and their values from the settings."""

import dataclasses

import pytest

from api.db.engine import EngineOptions
from api.graphql.schema import SchemaOptions
from api.settings import SETTING, Settings
from tests.conftest import make_settings

# Which settings each options object mirrors: pinned, so a field given a literal default of its
# own (a second place for the same number) fails here.
MIRRORED: dict[type, set[str]] = {
    EngineOptions: {
        "db_pool_size",
        "db_max_overflow",
        "db_connect_timeout",
        "db_connect_attempts",
        "db_statement_timeout",
        "db_read_timeout",
        "db_queue_limit",
    },
    SchemaOptions: {
        "production",
        "max_query_depth",
        "max_aliases",
        "max_tokens",
        "max_query_cost",
        "default_page_size",
        "max_page_size",
        "batch_max_operations",
    },
}


@pytest.mark.parametrize("options", MIRRORED, ids=lambda options: options.__name__)
def test_each_option_mirrors_its_setting(options: type) -> None:
    fields = dataclasses.fields(options)
    assert {f.metadata[SETTING] for f in fields if SETTING in f.metadata} == MIRRORED[options]


@pytest.mark.parametrize("options", MIRRORED, ids=lambda options: options.__name__)
def test_an_option_left_out_is_the_settings_default(options: type) -> None:
    assert options() == Settings.model_construct().options(options)


def test_options_follow_the_settings(database_url: str) -> None:
    settings = make_settings(
        database_url, db_pool_size=3, db_statement_timeout=None, max_query_depth=4
    )

    engine = settings.options(EngineOptions, max_overflow=0)
    schema = settings.options(SchemaOptions)

    assert (engine.pool_size, engine.statement_timeout, engine.max_overflow) == (3, None, 0)
    assert schema.max_depth == 4
    assert engine.pool_size != EngineOptions().pool_size
    assert schema.max_depth != SchemaOptions().max_depth
