#!/bin/bash
# outdial-healthcheck <port> [path]: exit 0 if GET http://127.0.0.1:<port><path> answers
# 200 within 3 s (path defaults to /healthz). Uses bash's /dev/tcp: the image carries no
# curl or wget. For Compose healthchecks; Kubernetes probes use httpGet instead.
set -euo pipefail
port="${1:?usage: outdial-healthcheck <port> [path]}"
path="${2:-/healthz}"
exec 3<>"/dev/tcp/127.0.0.1/${port}"
printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1:%s\r\nConnection: close\r\n\r\n' "$path" "$port" >&3
IFS= read -r -t 3 status <&3
[[ "$status" == HTTP/1.?" 200 "* ]]
