#!/usr/bin/env bash
# Backing services for Strata's distributed mode, run on this machine without Docker:
#   - Apache Kafka (single node, KRaft: broker + controller) from the Maven Central artifacts,
#   - FerretDB 1.24 (MongoDB wire protocol) with its SQLite backend, built from the Go module proxy
#     through the wrapper module in scripts/services/ferretdb.
#
# Usage: scripts/services.sh start|stop|status|env
#   start   fetch/build what is missing (cached), start both, wait until ready, print the settings
#   stop    stop both (SIGTERM, then SIGKILL) and remove their data directory
#   status  say what runs; exit 0 only when both run
#   env     print the settings as `export` lines: eval "$(scripts/services.sh env)"
#
# Settings (environment):
#   STRATA_SERVICES_CACHE          cache of the Kafka classpath and the FerretDB binary
#                                  (default ~/.cache/strata-services)
#   STRATA_SERVICES_DIR            data + logs of one run (default: a new mktemp -d)
#   STRATA_SERVICES_STATE          state file that stop/status/env read (default <cache>/state)
#   STRATA_SERVICES_HOST           listen address (default 127.0.0.1)
#   STRATA_KAFKA_PORT              Kafka client port (default 9092)
#   STRATA_KAFKA_CONTROLLER_PORT   KRaft controller port (default 9093)
#   STRATA_FERRETDB_PORT           FerretDB port (default 27017)
#   STRATA_SERVICES_TIMEOUT        seconds to wait for readiness (default 120)
#   STRATA_KAFKA_JAVA_OPTS         JVM options of the broker (default -Xms256m -Xmx768m)
#   STRATA_SERVICES_NO_KCAT=1      do not try to install kcat
# A port left at its default that is taken is replaced by a free one (the printed settings say
# which); a port set explicitly that is taken is an error.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
svc="$here/services"
root=$(cd "$here/.." && pwd)

CACHE=${STRATA_SERVICES_CACHE:-${HOME:-/tmp}/.cache/strata-services}
STATE=${STRATA_SERVICES_STATE:-$CACHE/state}
HOST=${STRATA_SERVICES_HOST:-127.0.0.1}
TIMEOUT=${STRATA_SERVICES_TIMEOUT:-120}
KAFKA_JAVA_OPTS=${STRATA_KAFKA_JAVA_OPTS:--Xms256m -Xmx768m}
MVN_DEPENDENCY_PLUGIN=org.apache.maven.plugins:maven-dependency-plugin:3.8.1

say() { echo "services: $*" >&2; }
die() { echo "services: $*" >&2; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# sha256 of files, first 12 hex digits: names a cache entry after its inputs.
digest() { cat "$@" | sha256sum | cut -c1-12; }

tail_log() { # file [lines]
  local f=$1 n=${2:-30}
  if [ -s "$f" ]; then
    echo "---- last $n lines of $f ----" >&2
    tail -n "$n" "$f" >&2
    echo "----" >&2
  else
    echo "(log $f is empty or missing)" >&2
  fi
}

port_busy() { # port
  local port=$1
  if command -v ss >/dev/null 2>&1; then
    [ -n "$(ss -Hltn "sport = :$port" 2>/dev/null)" ] && return 0
  fi
  (exec 3<>"/dev/tcp/$HOST/$port") 2>/dev/null && return 0
  return 1
}

# choose_port NAME_OF_VAR DEFAULT [TAKEN...]: the port to use, on stdout.
choose_port() {
  local var=$1 default=$2; shift 2
  local taken=" $* " explicit=${!var:-} port
  if [ -n "$explicit" ]; then
    if port_busy "$explicit" || [[ $taken == *" $explicit "* ]]; then
      echo "services: port $HOST:$explicit ($var) is already in use: free it or set $var to another port" >&2
      return 1
    fi
    echo "$explicit"; return 0
  fi
  port=$default
  while port_busy "$port" || [[ $taken == *" $port "* ]]; do
    port=$((port + 1))
    if [ "$port" -gt $((default + 200)) ]; then
      echo "services: no free port in $default..$((default + 200)) for $var" >&2
      return 1
    fi
  done
  if [ "$port" != "$default" ]; then echo "services: port $default is in use, $var=$port instead" >&2; fi
  echo "$port"
}

# ---------------------------------------------------------------------------------------------
# Build / fetch (cached)

kafka_libs_dir() { echo "$CACHE/kafka-$(digest "$svc/pom.xml")/libs"; }
ferretdb_bin() { echo "$CACHE/ferretdb-$(digest "$svc/ferretdb/go.mod" "$svc/ferretdb/go.sum" "$svc/ferretdb/main.go")/strata-ferretdb"; }

ensure_kafka_libs() {
  local libs; libs=$(kafka_libs_dir)
  [ -f "$libs/.complete" ] && return 0
  command -v mvn >/dev/null 2>&1 || { say "kafka: mvn not found (Maven 3 is needed to fetch the Kafka classpath)"; return 1; }
  local t0 tmp log; t0=$(now); tmp="$libs.tmp.$$"; log="$CACHE/kafka-fetch.log"
  say "kafka: fetching the classpath from Maven Central (mvn dependency:copy-dependencies, $svc/pom.xml)"
  rm -rf "$tmp"; mkdir -p "$tmp"
  if ! mvn -B -q -f "$svc/pom.xml" "$MVN_DEPENDENCY_PLUGIN:copy-dependencies" \
      -DincludeScope=runtime -DoutputDirectory="$tmp" >"$log" 2>&1; then
    say "kafka: mvn dependency:copy-dependencies FAILED"; tail_log "$log"; rm -rf "$tmp"; return 1
  fi
  ls "$tmp"/kafka_2.13-*.jar >/dev/null 2>&1 || { say "kafka: kafka_2.13 jar missing after mvn"; return 1; }
  touch "$tmp/.complete"
  rm -rf "$libs"; mv "$tmp" "$libs"
  local jars=("$libs"/*.jar)
  say "kafka: classpath ready in $(since "$t0")s (${#jars[@]} jars)"
}

ensure_ferretdb_bin() {
  local bin; bin=$(ferretdb_bin)
  [ -x "$bin" ] && return 0
  command -v go >/dev/null 2>&1 || { say "ferretdb: go not found (Go >= 1.24 is needed to build FerretDB 1.24)"; return 1; }
  local t0 log; t0=$(now); log="$CACHE/ferretdb-build.log"
  say "ferretdb: building $svc/ferretdb with $(go version | awk '{print $3}') (CGO_ENABLED=0; a first build takes minutes)"
  mkdir -p "$(dirname "$bin")"
  if ! (cd "$svc/ferretdb" && CGO_ENABLED=0 go build -mod=readonly -trimpath -buildvcs=false \
      -o "$bin.tmp.$$" .) >"$log" 2>&1; then
    say "ferretdb: go build FAILED"; tail_log "$log"; rm -f "$bin.tmp.$$"; return 1
  fi
  mv "$bin.tmp.$$" "$bin"
  say "ferretdb: built in $(since "$t0")s"
}

ensure_kcat() {
  command -v kcat >/dev/null 2>&1 && return 0
  [ "${STRATA_SERVICES_NO_KCAT:-}" = 1 ] && return 0
  if ! command -v apt-get >/dev/null 2>&1; then
    say "kcat: not found and no apt-get here: install kcat (Kafka's command line client) for the end-to-end test"
    return 0
  fi
  local sudo=""
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo -n"; else
      say "kcat: not found and not root: run 'apt-get install kcat' for the end-to-end test"; return 0
    fi
  fi
  local t0; t0=$(now)
  say "kcat: installing the Debian package"
  if $sudo apt-get update -qq >"$CACHE/kcat-install.log" 2>&1 &&
     DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq kcat >>"$CACHE/kcat-install.log" 2>&1; then
    say "kcat: installed in $(since "$t0")s"
  else
    say "kcat: apt-get install kcat FAILED (the end-to-end test that needs it will say so)"
    tail_log "$CACHE/kcat-install.log" 10
  fi
}

check_java() {
  command -v java >/dev/null 2>&1 || { say "kafka: java not found (Java >= 17 is needed)"; return 1; }
  local v; v=$(java -version 2>&1 | awk -F'"' '/version/ { print $2; exit }')
  local major=${v%%.*}
  [ "$major" = 1 ] && major=$(echo "$v" | cut -d. -f2)
  if [ "${major:-0}" -lt 17 ] 2>/dev/null; then say "kafka: java $v found, Kafka 4 needs Java >= 17"; return 1; fi
}

# ---------------------------------------------------------------------------------------------
# State

# pid_is PID MARKER: the process PID runs and its command line holds MARKER.
pid_is() {
  local pid=$1 marker=$2
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$marker"
}

KAFKA_MARKER=kafka.Kafka
FERRETDB_MARKER=strata-ferretdb

load_state() {
  [ -f "$STATE" ] || return 1
  # shellcheck disable=SC1090
  . "$STATE"
}

kafka_alive() { pid_is "${KAFKA_PID:-}" "$KAFKA_MARKER"; }
ferretdb_alive() { pid_is "${FERRETDB_PID:-}" "$FERRETDB_MARKER"; }

print_settings() { # prefix
  echo "${1}STRATA_KAFKA_BROKERS=$HOST_USED:$KAFKA_PORT"
  echo "${1}STRATA_MONGODB_URL=mongodb://$HOST_USED:$FERRETDB_PORT/strata"
}

stop_pid() { # name pid marker
  local name=$1 pid=$2 marker=$3 i
  pid_is "$pid" "$marker" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 300; i++)); do # 30 s
    pid_is "$pid" "$marker" || { say "$name stopped (pid $pid)"; return 0; }
    sleep 0.1
  done
  say "$name did not stop within 30 s of SIGTERM: SIGKILL (pid $pid)"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do pid_is "$pid" "$marker" || return 0; sleep 0.1; done
}

cleanup_run() { # stop what the state names, remove the data dir and the state
  stop_pid kafka "${KAFKA_PID:-}" "$KAFKA_MARKER"
  stop_pid ferretdb "${FERRETDB_PID:-}" "$FERRETDB_MARKER"
  if [ -n "${DIR:-}" ] && [ -d "$DIR" ]; then
    if [ "${DIR_OWNED:-0}" = 1 ]; then rm -rf "$DIR"; else rm -rf "$DIR/kafka" "$DIR/ferretdb"; fi
  fi
  rm -f "$STATE"
}

write_state() {
  mkdir -p "$(dirname "$STATE")"
  {
    printf 'DIR=%q\n' "$DIR"
    printf 'DIR_OWNED=%q\n' "$DIR_OWNED"
    printf 'HOST_USED=%q\n' "$HOST"
    printf 'KAFKA_PORT=%q\n' "$KAFKA_PORT"
    printf 'KAFKA_CONTROLLER_PORT=%q\n' "$KAFKA_CONTROLLER_PORT"
    printf 'FERRETDB_PORT=%q\n' "$FERRETDB_PORT"
    printf 'KAFKA_PID=%q\n' "${KAFKA_PID:-}"
    printf 'FERRETDB_PID=%q\n' "${FERRETDB_PID:-}"
  } >"$STATE.tmp"
  mv "$STATE.tmp" "$STATE"
}

# ---------------------------------------------------------------------------------------------
# Commands

# Starts a detached process; its pid (the exec'd program's own) lands in $pidfile.
spawn() { # pidfile logfile cmd...
  local pidfile=$1 log=$2; shift 2
  local detach=(); command -v setsid >/dev/null 2>&1 && detach=(setsid)
  # shellcheck disable=SC2016 # $$, $0 and $@ belong to the inner bash
  "${detach[@]}" bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" </dev/null >"$log" 2>&1 &
  local i
  for ((i = 0; i < 50; i++)); do [ -s "$pidfile" ] && break; sleep 0.05; done
  cat "$pidfile"
}

start_failed() { # service log message
  say "$1 FAILED: $3"
  tail_log "$2" 40
  cleanup_run
  exit 1
}

cmd_start() {
  local t_start; t_start=$(now)
  mkdir -p "$CACHE"

  if load_state; then
    if kafka_alive && ferretdb_alive; then
      say "already running (data in $DIR); 'scripts/services.sh stop' first to restart"
      print_settings ""
      return 0
    fi
    say "a previous run was left behind (state $STATE): cleaning it up"
    cleanup_run
    unset DIR DIR_OWNED KAFKA_PID FERRETDB_PID
  fi

  check_java || exit 1

  # Fetch and build in parallel: the FerretDB build dominates a cold start.
  local kafka_fetch ferretdb_build ok=1
  ensure_kafka_libs & kafka_fetch=$!
  ensure_ferretdb_bin & ferretdb_build=$!
  ensure_kcat
  wait "$kafka_fetch" || ok=0
  wait "$ferretdb_build" || ok=0
  [ "$ok" = 1 ] || die "start FAILED: could not fetch or build the services (see above)"

  KAFKA_PORT=$(choose_port STRATA_KAFKA_PORT 9092) || exit 1
  KAFKA_CONTROLLER_PORT=$(choose_port STRATA_KAFKA_CONTROLLER_PORT 9093 "$KAFKA_PORT") || exit 1
  FERRETDB_PORT=$(choose_port STRATA_FERRETDB_PORT 27017 "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT") || exit 1

  if [ -n "${STRATA_SERVICES_DIR:-}" ]; then
    DIR=$STRATA_SERVICES_DIR; DIR_OWNED=0
    [ -d "$DIR" ] || { mkdir -p "$DIR"; DIR_OWNED=1; }
    DIR=$(cd "$DIR" && pwd)
    if [ -e "$DIR/kafka" ] || [ -e "$DIR/ferretdb" ]; then
      die "start FAILED: $DIR already holds kafka/ or ferretdb/ from another run: remove them or choose another STRATA_SERVICES_DIR"
    fi
  else
    DIR=$(mktemp -d "${TMPDIR:-/tmp}/strata-services.XXXXXX"); DIR_OWNED=1
  fi
  HOST_USED=$HOST
  KAFKA_PID="" FERRETDB_PID=""
  write_state

  # Kafka: config, formatted storage, broker.
  local libs kdir klog cluster_id
  libs=$(kafka_libs_dir)
  kdir="$DIR/kafka"; klog="$kdir/kafka.log"
  mkdir -p "$kdir/data" "$kdir/logs"
  cp "$svc/log4j2.properties" "$kdir/log4j2.properties"
  sed -e "s|@HOST@|$HOST|g" -e "s|@PORT@|$KAFKA_PORT|g" -e "s|@CONTROLLER_PORT@|$KAFKA_CONTROLLER_PORT|g" \
    -e "s|@LOG_DIRS@|$kdir/data|g" "$svc/server.properties.in" >"$kdir/server.properties"
  # A cluster id is 16 random bytes in URL-safe base64 without padding (what `kafka-storage random-uuid` prints).
  # Like Kafka's Uuid.randomUuid, never one that starts with '-': the tool would read it as an option (1 in 64).
  cluster_id=-
  while [[ $cluster_id == -* ]]; do
    cluster_id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
  done
  local java_common=(-Djava.awt.headless=true "-Dlog4j2.configurationFile=$kdir/log4j2.properties"
    "-Dkafka.logs.dir=$kdir/logs" -cp "$libs/*")
  local t_kafka; t_kafka=$(now)
  if ! java -Xmx256m -XX:TieredStopAtLevel=1 "${java_common[@]}" kafka.tools.StorageTool format \
      -t "$cluster_id" -c "$kdir/server.properties" --ignore-formatted >"$kdir/format.log" 2>&1; then
    start_failed kafka "$kdir/format.log" "kafka-storage format failed"
  fi
  # shellcheck disable=SC2086
  KAFKA_PID=$(spawn "$kdir/pid" "$klog" java $KAFKA_JAVA_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    "${java_common[@]}" kafka.Kafka "$kdir/server.properties")
  write_state

  # FerretDB.
  local fdir flog t_ferretdb
  fdir="$DIR/ferretdb"; flog="$fdir/ferretdb.log"
  mkdir -p "$fdir/data"
  t_ferretdb=$(now)
  FERRETDB_PID=$(spawn "$fdir/pid" "$flog" "$(ferretdb_bin)" -listen-addr "$HOST:$FERRETDB_PORT" -sqlite-dir "$fdir/data")
  write_state

  # Readiness. Kafka: its "Kafka Server started" line, then a metadata request with kcat where
  # there is one. FerretDB: its "strata-ferretdb ready" line (printed once the listener is bound),
  # a TCP connection, then a `ping` command through the project's mongodb driver where installed.
  local deadline kafka_ready=0 ferretdb_ready=0
  deadline=$(($(date +%s) + TIMEOUT))
  while [ "$kafka_ready" = 0 ] || [ "$ferretdb_ready" = 0 ]; do
    if [ "$kafka_ready" = 0 ]; then
      kafka_alive || start_failed kafka "$klog" "the broker exited during start-up (log $klog)"
      if grep -q 'Kafka Server started' "$klog" 2>/dev/null; then
        kafka_ready=1; say "kafka ready on $HOST:$KAFKA_PORT in $(since "$t_kafka")s (pid $KAFKA_PID)"
      fi
    fi
    if [ "$ferretdb_ready" = 0 ]; then
      ferretdb_alive || start_failed ferretdb "$flog" "the server exited during start-up (log $flog)"
      if grep -q 'strata-ferretdb ready' "$flog" 2>/dev/null && (exec 3<>"/dev/tcp/$HOST/$FERRETDB_PORT") 2>/dev/null; then
        ferretdb_ready=1; say "ferretdb ready on $HOST:$FERRETDB_PORT in $(since "$t_ferretdb")s (pid $FERRETDB_PID)"
      fi
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      [ "$kafka_ready" = 1 ] || start_failed kafka "$klog" "not ready within ${TIMEOUT}s (no 'Kafka Server started' in $klog)"
      start_failed ferretdb "$flog" "not ready within ${TIMEOUT}s (no TCP listener on $HOST:$FERRETDB_PORT)"
    fi
    sleep 0.2
  done

  if command -v kcat >/dev/null 2>&1; then
    if ! kcat -L -b "$HOST:$KAFKA_PORT" -m 10 >"$kdir/kcat-metadata.txt" 2>&1; then
      start_failed kafka "$kdir/kcat-metadata.txt" "the broker logged its start but kcat -L got no metadata"
    fi
  fi
  if command -v node >/dev/null 2>&1 && [ -d "$root/node_modules/mongodb" ]; then
    if ! (cd "$root" && node --input-type=module -e '
        import { MongoClient } from "mongodb";
        const c = new MongoClient(process.argv[1], { serverSelectionTimeoutMS: 10000 });
        try { const r = await c.db("admin").command({ ping: 1 }); if (r.ok !== 1) throw new Error(JSON.stringify(r)); }
        finally { await c.close(); }' "mongodb://$HOST:$FERRETDB_PORT/strata") >"$fdir/ping.log" 2>&1; then
      cat "$fdir/ping.log" >>"$flog"
      start_failed ferretdb "$flog" "listening, but a ping through the mongodb driver failed"
    fi
  fi

  say "started in $(since "$t_start")s; data and logs in $DIR; stop with: scripts/services.sh stop"
  print_settings ""
}

cmd_stop() {
  if ! load_state; then say "not running (no state file $STATE)"; return 0; fi
  cleanup_run
  say "stopped; removed ${DIR:-the data dir}"
}

cmd_status() {
  if ! load_state; then say "not running (no state file $STATE)"; return 1; fi
  local rc=0
  if kafka_alive; then echo "kafka: running, pid $KAFKA_PID, $HOST_USED:$KAFKA_PORT (controller :$KAFKA_CONTROLLER_PORT)"
  else echo "kafka: NOT running"; rc=1; fi
  if ferretdb_alive; then echo "ferretdb: running, pid $FERRETDB_PID, $HOST_USED:$FERRETDB_PORT"
  else echo "ferretdb: NOT running"; rc=1; fi
  echo "data: $DIR"
  [ "$rc" = 0 ] && print_settings ""
  return "$rc"
}

cmd_env() {
  if ! load_state; then say "not running: scripts/services.sh start first"; return 1; fi
  kafka_alive || { say "kafka is not running (state $STATE)"; return 1; }
  ferretdb_alive || { say "ferretdb is not running (state $STATE)"; return 1; }
  print_settings "export "
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  env) cmd_env ;;
  *) echo "usage: scripts/services.sh start|stop|status|env" >&2; exit 2 ;;
esac
