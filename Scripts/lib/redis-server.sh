# shellcheck shell=bash
# A private redis-server for the test and bench scripts, and the Debian packages the Redis provider
# needs. Source it; it defines functions and one array and runs nothing.
#
#   abe_redis_ensure_installed [PACKAGE...]
#       Installs whichever of PACKAGE... (default: ABE_REDIS_PACKAGES) is missing, with apt-get
#       (through sudo when not root). CI starts from a machine with only Swift and apt.
#   abe_redis_start STATE-DIR
#       Starts redis-server on a free loopback port, state in STATE-DIR (pidfile, log, nothing
#       persisted), waits until it answers, and exports ABE_REDIS_PORT, ABE_REDIS_PIDFILE and
#       REDIS_URL=redis://127.0.0.1:PORT/0.
#   abe_redis_stop
#       Stops the server abe_redis_start started (only that pid), waits for it, removes the pidfile.
#       Always returns 0, may be called twice, and is meant for an EXIT trap:
#           trap abe_redis_stop EXIT
#           abe_redis_start .build/test-redis

# The packages the Redis provider needs: the server and redis-cli/redis-benchmark for the tests and
# the baseline, and the hiredis headers the provider links against.
ABE_REDIS_PACKAGES=(redis-server redis-tools libhiredis-dev)

_abe_redis_log() {
  echo "$(basename "$0"): $*" >&2
}

# Whether PACKAGE is usable. The server and tools are judged by their commands, so a build from
# source on PATH counts; anything else must be installed as a Debian package.
_abe_redis_has_package() {
  case $1 in
    redis-server) command -v redis-server >/dev/null 2>&1 ;;
    redis-tools) command -v redis-cli >/dev/null 2>&1 && command -v redis-benchmark >/dev/null 2>&1 ;;
    *) [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = 'install ok installed' ] ;;
  esac
}

abe_redis_ensure_installed() {
  local packages=("$@") missing=() package
  [ $# -gt 0 ] || packages=("${ABE_REDIS_PACKAGES[@]}")
  for package in "${packages[@]}"; do
    _abe_redis_has_package "$package" || missing+=("$package")
  done
  [ ${#missing[@]} -gt 0 ] || return 0

  _abe_redis_log "installing ${missing[*]}"
  if ! command -v apt-get >/dev/null 2>&1; then
    _abe_redis_log "apt-get is not available; install ${missing[*]} by hand"
    return 1
  fi
  local sudo_cmd=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { _abe_redis_log "not root and no sudo; install ${missing[*]} by hand"; return 1; }
    sudo_cmd=(sudo)
  fi
  # `env` inside sudo: sudo resets the environment, so a DEBIAN_FRONTEND set outside would be lost.
  # Output goes to stderr, since the callers' stdout may be machine-read (Scripts/bench prints JSON).
  "${sudo_cmd[@]}" apt-get update -qq >&2 || return 1
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2 || return 1
  for package in "${missing[@]}"; do
    _abe_redis_has_package "$package" || { _abe_redis_log "$package is still missing after apt-get install"; return 1; }
  done
}

# Prints a loopback TCP port nothing listens on. Ports come from 20000-32767, below Linux's
# ephemeral range, so outgoing connections do not take them between this check and the bind; a
# lost race is still possible and abe_redis_start retries on another port.
_abe_redis_free_port() {
  local attempt port
  for attempt in $(seq 1 100); do
    port=$((20000 + RANDOM % 12768))
    # Pure bash: connecting succeeds only when something listens.
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  _abe_redis_log "found no free loopback port"
  return 1
}

# Whether PID is a live process (zombies count as gone).
_abe_redis_alive() {
  local state
  kill -0 "$1" 2>/dev/null || return 1
  # The state follows the parenthesised command name, which may itself contain spaces.
  state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 0
  [ "$state" != Z ]
}

# Whether PID is the redis-server whose state directory is DIR: guards against killing an unrelated
# process that reused the pid of a server that already exited, or another redis-server. redis-server
# changes its working directory to --dir, so the cwd identifies the instance.
_abe_redis_is_ours() {
  local pid=$1 dir=$2 cwd cmdline
  cwd=$(readlink "/proc/$pid/cwd" 2>/dev/null) || return 1
  cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [ "$cwd" = "$dir" ] && [[ $cmdline == *redis-server* ]]
}

abe_redis_start() {
  if [ $# -ne 1 ] || [ -z "$1" ]; then
    _abe_redis_log "usage: abe_redis_start STATE-DIR"
    return 2
  fi
  local dir pidfile logfile attempt port pid deadline reply info
  mkdir -p "$1" || return 1
  dir=$(cd "$1" && pwd -P) || return 1   # physical, to compare with /proc/PID/cwd
  pidfile=$dir/redis.pid
  logfile=$dir/redis.log

  # A server left over from an earlier run that was killed before its trap ran.
  if [ -f "$pidfile" ]; then
    ABE_REDIS_PIDFILE=$pidfile abe_redis_stop
  fi

  for attempt in 1 2 3 4 5; do
    port=$(_abe_redis_free_port) || return 1
    rm -f "$pidfile"
    : >"$logfile"
    local args=(--port "$port" --bind 127.0.0.1 --save "" --appendonly no --daemonize yes
                --pidfile "$pidfile" --logfile "$logfile" --dir "$dir")
    if ! redis-server "${args[@]}" >>"$logfile" 2>&1; then
      _abe_redis_log "redis-server failed to start; the end of $logfile:"
      tail -n 20 "$logfile" >&2
      return 1
    fi

    # The daemon forks before it binds, so success means: the pidfile names a live process, that
    # process answers PING, and it is the process that answered (not another server on the port).
    deadline=$((SECONDS + 5))
    while [ "$SECONDS" -le "$deadline" ]; do
      if grep -q 'Could not create server TCP listening socket' "$logfile" 2>/dev/null; then
        break   # someone took the port after the check; try another
      fi
      pid=$(cat "$pidfile" 2>/dev/null || true)
      if [ -n "$pid" ] && _abe_redis_alive "$pid"; then
        reply=$(timeout 2 redis-cli -p "$port" ping 2>/dev/null || true)
        info=$(timeout 2 redis-cli -p "$port" info server 2>/dev/null || true)
        if [ "$reply" = PONG ] && [[ $info == *"process_id:$pid"[!0-9]* ]]; then
          export ABE_REDIS_PORT=$port ABE_REDIS_PIDFILE=$pidfile REDIS_URL="redis://127.0.0.1:$port/0"
          _abe_redis_log "redis-server $pid listening on $REDIS_URL (log: $logfile)"
          return 0
        fi
      fi
      sleep 0.1
    done

    # Not up: stop whatever this attempt started before trying again or giving up.
    ABE_REDIS_PIDFILE=$pidfile abe_redis_stop
    if ! grep -q 'Could not create server TCP listening socket' "$logfile" 2>/dev/null; then
      break
    fi
    _abe_redis_log "port $port was taken (attempt $attempt); trying another"
  done
  _abe_redis_log "redis-server did not come up (no PONG from it within 5 s); the end of $logfile:"
  tail -n 20 "$logfile" >&2
  return 1
}

abe_redis_stop() {
  local pidfile=${ABE_REDIS_PIDFILE:-} pid=""
  [ -n "$pidfile" ] || return 0
  pid=$(cat "$pidfile" 2>/dev/null || true)
  if [[ $pid =~ ^[0-9]+$ ]] && _abe_redis_alive "$pid" && _abe_redis_is_ours "$pid" "$(dirname "$pidfile")"; then
    kill -TERM "$pid" 2>/dev/null || true
    # SIGTERM: redis exits promptly (nothing to save); allow 5 s, then SIGKILL and 2 s more.
    for _ in $(seq 1 50); do
      _abe_redis_alive "$pid" || break
      sleep 0.1
    done
    if _abe_redis_alive "$pid"; then
      _abe_redis_log "redis-server $pid ignored SIGTERM; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      for _ in $(seq 1 20); do
        _abe_redis_alive "$pid" || break
        sleep 0.1
      done
    fi
    if _abe_redis_alive "$pid"; then
      _abe_redis_log "redis-server $pid is still running"
    fi
  fi
  rm -f "$pidfile" 2>/dev/null || true
  unset ABE_REDIS_PIDFILE ABE_REDIS_PORT
  return 0
}
