"""MIGRATE_ON_START: `serve` migrates an empty database before it answers (off by default)."""

from tests.postgres import create_database, drop_database
from tests.served import served


async def readiness_after_start(database_url: str, *, migrate_on_start: bool) -> int:
    settings = {"DATABASE_URL": database_url, "MIGRATE_ON_START": str(migrate_on_start).lower()}
    async with served(**settings) as server:
        return (await server.http.get("/readyz")).status_code


async def test_serve_migrates_first_when_asked(postgres_admin_url: str) -> None:
    url = await create_database(postgres_admin_url, prefix="catalog_onstart")
    try:
        assert await readiness_after_start(url, migrate_on_start=False) == 503
        assert await readiness_after_start(url, migrate_on_start=True) == 200
    finally:
        await drop_database(postgres_admin_url, url)
