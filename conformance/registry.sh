#!/usr/bin/env bash
# Starts a Docker registry on 127.0.0.1:5000 for the ch-image adapter,
# with a fresh self-signed certificate (ch-image speaks only HTTPS), and
# prints the variables the adapter needs. `registry.sh stop` stops it.
# Everything lives in $SINGLE_ID_REGISTRY_DIR (default /tmp/single-id-registry).
set -euo pipefail
dir=${SINGLE_ID_REGISTRY_DIR:-/tmp/single-id-registry}
if [[ ${1:-} == stop ]]; then
  [[ -f $dir/pid ]] && kill "$(cat "$dir/pid")" 2>/dev/null || true
  exit 0
fi
command -v docker-registry >/dev/null || { echo "error: docker-registry is needed (Debian package docker-registry)" >&2; exit 1; }
mkdir -p "$dir"
chmod 755 "$dir"
if [[ ! -f $dir/cert.pem ]]; then
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$dir/key.pem" -out "$dir/cert.pem" -days 7 \
    -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null
  chmod 644 "$dir/cert.pem"
fi
cat >"$dir/config.yml" <<YAML
version: 0.1
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:5000
  tls:
    certificate: $dir/cert.pem
    key: $dir/key.pem
YAML
if ! curl -skf https://127.0.0.1:5000/v2/ >/dev/null; then
  docker-registry serve "$dir/config.yml" >"$dir/log" 2>&1 &
  echo $! >"$dir/pid"
  for _ in $(seq 50); do curl -skf https://127.0.0.1:5000/v2/ >/dev/null && break; sleep 0.1; done
  curl -skf https://127.0.0.1:5000/v2/ >/dev/null || { cat "$dir/log" >&2; echo "error: the registry did not start" >&2; exit 1; }
fi
echo "export SINGLE_ID_REGISTRY=127.0.0.1:5000 SINGLE_ID_REGISTRY_CA=$dir/cert.pem"
