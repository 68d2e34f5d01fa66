#!/usr/bin/env bash
# Start a throwaway PostgreSQL server on loopback for the store tests and print its URL.
# Usage: env=$(bash .ci/postgres.sh DATA_DIR [PORT]) && eval "$env"   -> exports BUDGETBENCH_TEST_POSTGRES_URL
set -euo pipefail
data_dir=${1:?usage: postgres.sh DATA_DIR [PORT]}
port=${2:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
fi
bin=$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n 1)")
mkdir -p "$data_dir"
chown postgres:postgres "$data_dir"
if ! runuser -u postgres -- test -w "$data_dir"; then
    echo "postgres.sh: the postgres user cannot reach $data_dir (check its parents' permissions)" >&2
    exit 1
fi
# initdb refuses to run as root: run the server as the postgres system user.
runuser -u postgres -- "$bin/initdb" -D "$data_dir/pgdata" -A trust -U postgres >&2
runuser -u postgres -- "$bin/pg_ctl" -D "$data_dir/pgdata" -l "$data_dir/server.log" -w \
    -o "-p $port -k $data_dir -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off" start >&2
echo "export BUDGETBENCH_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:$port/postgres"
