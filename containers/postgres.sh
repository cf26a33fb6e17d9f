#!/bin/sh
# Make a PostgreSQL server answer on localhost:5432 for the results-store tests (what `make test` calls):
# when none answers, install Debian's postgresql if missing, create and start its `main` cluster; then make
# sure the role `vsbench` (password `vsbench`) and the database `vsbench_test` exist. Idempotent: run it
# twice and the second run only checks. Prints the URL the tests use (VSBENCH_TEST_POSTGRES_URL) on stdout;
# everything else goes to stderr.
set -eu
HOST=localhost
PORT=5432
ROLE=vsbench
PASSWORD=vsbench
DB=vsbench_test
URL="postgresql+psycopg://$ROLE:$PASSWORD@$HOST:$PORT/$DB"
LIBPQ_URL="postgresql://$ROLE:$PASSWORD@$HOST:$PORT/$DB"

say() { echo "containers/postgres.sh: $*" >&2; }
die() { say "$*"; exit 1; }

answers() {
    if command -v pg_isready >/dev/null 2>&1; then
        pg_isready -q -h "$HOST" -p "$PORT" -t 2 >/dev/null 2>&1
    else
        timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT" >/dev/null 2>&1
    fi
}

as_postgres() {  # run a command as the cluster's superuser, over the local socket (peer authentication)
    (cd / && runuser -u postgres -- "$@")
}

newest_version() {
    ls /usr/lib/postgresql 2>/dev/null | grep -E '^[0-9]+$' | sort -n | tail -1
}

if ! answers; then
    [ "$(id -u)" = 0 ] || die "no PostgreSQL answers on $HOST:$PORT and this is not root: install postgresql and start it"
    VERSION=$(newest_version)
    if [ -z "$VERSION" ] || ! command -v pg_ctlcluster >/dev/null 2>&1; then
        say "installing postgresql from Debian ..."
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
        VERSION=$(newest_version)
        [ -n "$VERSION" ] || die "apt-get installed postgresql but /usr/lib/postgresql holds no server version"
    fi
    if ! pg_lsclusters -h 2>/dev/null | awk -v v="$VERSION" '$1 == v && $2 == "main" {found = 1} END {exit !found}'; then
        say "creating cluster $VERSION/main on port $PORT ..."
        pg_createcluster "$VERSION" main --port "$PORT" >/dev/null
    fi
    CLUSTER_PORT=$(pg_lsclusters -h | awk -v v="$VERSION" '$1 == v && $2 == "main" {print $3}')
    [ "$CLUSTER_PORT" = "$PORT" ] || die "cluster $VERSION/main listens on port $CLUSTER_PORT, not $PORT"
    if ! pg_lsclusters -h | awk -v v="$VERSION" '$1 == v && $2 == "main" && $4 == "online" {f = 1} END {exit !f}'; then
        say "starting cluster $VERSION/main ..."
        pg_ctlcluster "$VERSION" main start \
            || die "pg_ctlcluster $VERSION main start failed; see /var/log/postgresql/postgresql-$VERSION-main.log"
    fi
    i=0
    until answers; do
        i=$((i + 1))
        [ $i -lt 30 ] || die "PostgreSQL $VERSION did not answer on $HOST:$PORT within 30 s"
        sleep 1
    done
fi

# the role and the database: as the local superuser where this host runs the server and we are root
if [ "$(id -u)" = 0 ] && id postgres >/dev/null 2>&1 && command -v psql >/dev/null 2>&1 \
        && as_postgres psql -qtAc "SELECT 1" >/dev/null 2>&1; then
    if [ "$(as_postgres psql -qtAc "SELECT 1 FROM pg_roles WHERE rolname = '$ROLE'")" != 1 ]; then
        say "creating role $ROLE ..."
        as_postgres psql -q -v ON_ERROR_STOP=1 -c "CREATE ROLE $ROLE LOGIN PASSWORD '$PASSWORD'" >/dev/null
    else
        as_postgres psql -q -v ON_ERROR_STOP=1 -c "ALTER ROLE $ROLE LOGIN PASSWORD '$PASSWORD'" >/dev/null
    fi
    if [ "$(as_postgres psql -qtAc "SELECT 1 FROM pg_database WHERE datname = '$DB'")" != 1 ]; then
        say "creating database $DB ..."
        as_postgres createdb -O "$ROLE" "$DB"
    fi
fi

if command -v psql >/dev/null 2>&1; then
    psql "$LIBPQ_URL" -qtAc "SELECT 1" >/dev/null 2>&1 \
        || die "PostgreSQL answers on $HOST:$PORT but $ROLE cannot log in to $DB (create them, password $PASSWORD)"
fi
echo "$URL"
