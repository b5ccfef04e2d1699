# Sourced by scripts/test.sh: a throwaway PostgreSQL server for the archive tests.
#
# Installs Debian's postgresql when missing, starts a private cluster (initdb + pg_ctl in
# /tmp/clade-test-postgres, on a free loopback port, as the postgres user when run as root),
# creates the database `clade_test` and exports CLADE_TEST_POSTGRES_URL. Running it again reuses
# the server while it answers. When any step fails the variable stays unset, the reason is
# printed, and the PostgreSQL half of tests/archive skips with that reason instead of failing.

_clade_pg_dir=/tmp/clade-test-postgres

_clade_pg_as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

_clade_pg_setup() {
    local bin port
    if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
        if [ "$(id -u)" != 0 ]; then
            echo "postgresql is not installed and this user cannot apt-get install it"
            return 1
        fi
        echo "installing Debian's postgresql"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq || return 1
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null || return 1
    fi
    bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)

    if [ -f "$_clade_pg_dir/port" ] && "$bin/pg_isready" -q -h 127.0.0.1 -p "$(cat "$_clade_pg_dir/port")"; then
        port=$(cat "$_clade_pg_dir/port")
        echo "reusing the PostgreSQL test server on port $port"
    else
        if [ -f "$_clade_pg_dir/data/postmaster.pid" ]; then
            _clade_pg_as_owner "$bin/pg_ctl" -D "$_clade_pg_dir/data" -m immediate stop >/dev/null 2>&1 || true
        fi
        rm -rf "$_clade_pg_dir"
        mkdir -p "$_clade_pg_dir" || return 1
        port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])') || return 1
        echo "$port" >"$_clade_pg_dir/port"
        if [ "$(id -u)" = 0 ]; then
            chown postgres: "$_clade_pg_dir" || return 1
        fi
        _clade_pg_as_owner "$bin/initdb" -D "$_clade_pg_dir/data" -U postgres --auth=trust -E UTF8 --no-sync \
            >"$_clade_pg_dir/initdb.log" 2>&1 || { cat "$_clade_pg_dir/initdb.log"; return 1; }
        # Loopback only, sockets in its own directory, no durability: it is a test server.
        _clade_pg_as_owner "$bin/pg_ctl" -D "$_clade_pg_dir/data" -l "$_clade_pg_dir/server.log" -w -t 60 \
            -o "-p $port -c listen_addresses=127.0.0.1 -k $_clade_pg_dir -c fsync=off -c full_page_writes=off" \
            start >/dev/null || { cat "$_clade_pg_dir/server.log"; return 1; }
        "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres clade_test || return 1
        echo "started a PostgreSQL test server on port $port ($("$bin/postgres" --version))"
    fi
    export CLADE_TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:$port/clade_test"
}

if ! _clade_pg_setup; then
    echo "WARNING: no PostgreSQL test server; the archive's PostgreSQL tests will be skipped"
    unset CLADE_TEST_POSTGRES_URL
fi
