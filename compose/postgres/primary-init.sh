#!/bin/bash
# Runs once, when the primary's data directory is first created (the postgres image runs every
# script in /docker-entrypoint-initdb.d then): the role and the slot the streaming replica
# clones and follows with, and the pg_hba line that lets it connect for replication.
set -euo pipefail

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  --set=user="$REPLICATION_USER" --set=password="$REPLICATION_PASSWORD" \
  --set=slot="$REPLICATION_SLOT" <<'SQL'
CREATE ROLE :"user" WITH REPLICATION LOGIN PASSWORD :'password';
-- The slot keeps the WAL the replica has not received yet, however long it is away.
SELECT pg_create_physical_replication_slot(:'slot');
SQL

# "all" in pg_hba.conf does not match replication connections: they need their own line.
echo "host replication $REPLICATION_USER all scram-sha-256" >> "$PGDATA/pg_hba.conf"
