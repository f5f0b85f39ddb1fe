#!/bin/bash
# The streaming read replica: on first start, clone the primary with pg_basebackup (-R writes
# standby.signal and primary_conninfo), then hand over to the image's own entrypoint, which
# finds the data directory populated and starts Postgres as a hot standby that follows the
# primary through the replication slot. Later starts skip the clone and resume streaming.
set -euo pipefail

if [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA"
  chown postgres:postgres "$PGDATA"
  chmod 0700 "$PGDATA"
  exec gosu postgres "$0" "$@"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  until pg_isready --quiet --host "$PRIMARY_HOST" --port "$PRIMARY_PORT"; do
    echo "replica: waiting for the primary at $PRIMARY_HOST:$PRIMARY_PORT"
    sleep 1
  done
  PGPASSWORD="$REPLICATION_PASSWORD" pg_basebackup \
    --host "$PRIMARY_HOST" --port "$PRIMARY_PORT" --username "$REPLICATION_USER" \
    --pgdata "$PGDATA" --wal-method stream --write-recovery-conf \
    --slot "$REPLICATION_SLOT" --checkpoint fast --no-password --progress
fi

exec docker-entrypoint.sh "$@"
