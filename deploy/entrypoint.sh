#!/bin/bash
# Image entrypoint: the first argument names the outdial binary, the rest are its
# arguments (`docker run outdial outdial-dialer`, `docker run outdial outdialctl queues`).
set -euo pipefail
case "${1:-}" in
    outdial-dialer | outdial-health | outdial-stats | outdial-api | outdialctl | outdial-carrier-sim) ;;
    *)
        echo "usage: <outdial-dialer|outdial-health|outdial-stats|outdial-api|outdialctl|outdial-carrier-sim> [args...]" >&2
        exit 64
        ;;
esac
exec "/usr/local/bin/$1" "${@:2}"
