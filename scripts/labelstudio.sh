#!/usr/bin/env bash
# A local Label Studio for review (and for the tests): bound to 127.0.0.1, known token,
# data under .labelstudio/ (ignored by git). Installs it into .venv-ls on first use.
#
#   scripts/labelstudio.sh start     # install if needed, start, wait for /health
#   scripts/labelstudio.sh stop
#
# Settings: WASTESORT_LABELSTUDIO_URL's port (default 8080), LABEL_STUDIO_USER_TOKEN
# (default wastesort-dev-token), LABEL_STUDIO_USERNAME / LABEL_STUDIO_PASSWORD.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=$ROOT/.venv-ls
DATA=${LABEL_STUDIO_DATA_DIR:-$ROOT/.labelstudio}
PORT=${LABEL_STUDIO_PORT:-8080}
PIDFILE=$DATA/server.pid

export LABEL_STUDIO_USERNAME=${LABEL_STUDIO_USERNAME:-reviewer@wastesort.local}
export LABEL_STUDIO_PASSWORD=${LABEL_STUDIO_PASSWORD:-wastesort-review}
export LABEL_STUDIO_USER_TOKEN=${LABEL_STUDIO_USER_TOKEN:-wastesort-dev-token}
export LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN=true LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK=true
export SENTRY_DSN= FRONTEND_SENTRY_DSN= LATEST_VERSION_CHECK=false COLLECT_ANALYTICS=false
# let Label Studio call the model service on this machine (ML backend pre-annotation)
export LABEL_STUDIO_ML_BLOCK_LOCAL_IP=false LABEL_STUDIO_SSRF_PROTECTION_ENABLED=false

healthy() { curl -fsS "http://127.0.0.1:$PORT/health" 2>/dev/null | grep -q UP; }

case "${1:-}" in
  start)
    if healthy; then echo "Label Studio already up on port $PORT"; exit 0; fi
    if [ ! -x "$VENV/bin/label-studio" ]; then
      python3 -m venv "$VENV"
      "$VENV/bin/pip" install -q label-studio==1.23.2
    fi
    mkdir -p "$DATA"
    [ -f "$DATA/label_studio.sqlite3" ] || "$VENV/bin/label-studio" version --data-dir "$DATA" >/dev/null 2>&1 || true
    nohup "$VENV/bin/label-studio" start --no-browser --internal-host 127.0.0.1 --port "$PORT" \
      --data-dir "$DATA" > "$DATA/server.log" 2>&1 &
    echo $! > "$PIDFILE"
    for _ in $(seq 1 180); do
      if healthy; then echo "Label Studio up on http://127.0.0.1:$PORT"; exit 0; fi
      sleep 1
    done
    echo "Label Studio did not become healthy; see $DATA/server.log" >&2; exit 1 ;;
  stop)
    if [ -f "$PIDFILE" ]; then
      kill "$(cat "$PIDFILE")" 2>/dev/null || true
      rm -f "$PIDFILE"
    fi
    for _ in $(seq 1 30); do healthy || { echo "Label Studio stopped"; exit 0; }; sleep 1; done
    echo "Label Studio still answers on port $PORT" >&2; exit 1 ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
