# Developer recipes. `just` is not a Debian package here: `cargo install just --locked`
# (~2.5 min). The README's two commands work without it.

default:
    @just --list

# Start PostgreSQL and Redis if they are down (installing them from Debian if missing).
services:
    .ci/services

# The demo campaign: the whole fleet dials 2,355 contacts at 20 cps.
demo *ARGS: services
    cargo demo {{ARGS}}

# All tests on the real services (what CI runs).
test: services
    cargo nextest run --workspace

# Formatting and lints, as strict as review.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Apply migrations to $OUTDIAL_POSTGRES__URL (creating the database if needed).
migrate:
    cargo run -q -p outdialctl -- migrate --create

# Queue depths and dead letters, channel pools.
inspect:
    cargo run -q -p outdialctl -- queues --dead 10
    cargo run -q -p outdialctl -- channels

# Pacing benchmark: 1, 5, 20 and 100 cps for 60 s each (release build).
bench-pacing *ARGS: services
    cargo run --release -q -p outdialctl -- bench pacing {{ARGS}}

# Dispatch benchmark: 1M contacts, 1,000 orgs, 2,000 campaigns (release build).
# Postgres over its Unix socket: sqlx 0.9.0 leaves Nagle on for TCP (launchbadge/sqlx#4335),
# which stalls every query with large parameters ~40 ms (docs/BENCHMARKS.md).
bench-dispatch *ARGS: services
    OUTDIAL_POSTGRES__URL="${OUTDIAL_POSTGRES__URL:-postgres://postgres@localhost/postgres?host=/var/run/postgresql}" cargo run --release -q -p outdialctl -- bench dispatch {{ARGS}}
