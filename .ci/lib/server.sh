# Sourced by .ci steps: starts the real server (`node bin/strata.ts start`) on a temporary data
# directory and a free port with rate limits off, and stops it (and its runners) again.
# start_strata sets STRATA_URL, STRATA_PID and STRATA_TMP; stop_strata is safe to call twice.

start_strata() {
  STRATA_TMP=$(mktemp -d -t strata-ci-XXXXXX)
  local port
  port=$(node -e 'const s = require("node:net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })')
  STRATA_URL="http://127.0.0.1:${port}"
  # Nothing from this shell's STRATA_* variables (e.g. the service URLs CI exports) reaches the server.
  # setsid: the server leads its own process group, so that stopping it takes its runners along.
  local unset_strata=()
  local name
  for name in $(compgen -e | grep '^STRATA_'); do unset_strata+=(-u "$name"); done
  env "${unset_strata[@]}" STRATA_ADMIN_USER=admin@example.com STRATA_ADMIN_PASSWORD='Admin123!' PORT="$port" HOST=127.0.0.1 STRATA_DATA_DIR="$STRATA_TMP/data" STRATA_RATE_LIMITS=off \
    STRATA_LOG_LEVEL=warn setsid node bin/strata.ts start >"$STRATA_TMP/server.log" 2>&1 &
  STRATA_PID=$!
  for _ in $(seq 1 150); do
    if curl -fsS "$STRATA_URL/health" >/dev/null 2>&1; then return 0; fi
    if ! kill -0 "$STRATA_PID" 2>/dev/null; then break; fi
    sleep 0.2
  done
  echo "ci: the server did not start; its log:"
  cat "$STRATA_TMP/server.log"
  return 1
}

stop_strata() {
  if [ -n "${STRATA_PID:-}" ] && kill -0 "$STRATA_PID" 2>/dev/null; then
    kill -TERM -- "-$STRATA_PID" 2>/dev/null || kill -TERM "$STRATA_PID" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$STRATA_PID" 2>/dev/null || break; sleep 0.2; done
    kill -KILL -- "-$STRATA_PID" 2>/dev/null || true
  fi
  STRATA_PID=
  if [ -n "${STRATA_TMP:-}" ]; then rm -rf "$STRATA_TMP"; fi
  STRATA_TMP=
}
