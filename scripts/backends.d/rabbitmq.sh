# shellcheck shell=bash
# RabbitMQ for scripts/backends (sourced by it): Debian's `rabbitmq-server`, run as a plain process
# under the backends directory, never as the system service.
#
# Installed with apt-get when missing (as root; like scripts/tools). Without root or apt-get it is
# left out: its exports are not printed and the tests that need it skip; with CI set that is an
# error instead.
#
# Everything listens on 127.0.0.1 only: AMQP (RABBITMQ_PORT), Erlang's distribution port
# (RABBITMQ_DIST_PORT), the management plugin's HTTP API (RABBITMQ_MANAGEMENT_PORT: the tests read
# queue counts there) and an epmd of its own (RABBITMQ_EPMD_PORT), started by the wrapper below in
# the broker's process group, so `stop` ends it with the broker. The node's data, logs, config,
# Erlang cookie ($HOME) and enabled-plugins file live in $DIR/rabbitmq. Users and vhosts come from
# a definitions file written at each start: the user `esm` (password made once and kept in
# credentials.env) with every permission on the vhosts `/` and `esm-vhost`.
#
# Exports: RABBITMQ_PORT, RABBITMQ_URL (amqp://esm:PASSWORD@127.0.0.1:PORT/, for test clients),
# RABBITMQ_MANAGEMENT_URL (http://127.0.0.1:PORT, the HTTP API),
# RABBITMQ_USERNAME, RABBITMQ_PASSWORD, RABBITMQ_VHOST (the second vhost).

RABBITMQ_SERVER=/usr/lib/rabbitmq/bin/rabbitmq-server
RABBITMQ_PORT_VARS=(RABBITMQ_PORT RABBITMQ_DIST_PORT RABBITMQ_EPMD_PORT RABBITMQ_MANAGEMENT_PORT)
RABBITMQ_EXTRA_VHOST=esm-vhost
RABBITMQ_MISSING=0 # 1: not installed and not installable here (left out)

rabbitmq_ci() { case "${CI:-}" in "" | 0 | false | no) return 1 ;; esac; }

# Install Debian's rabbitmq-server once; its service is never started (policy-rc.d in containers;
# on a host with an init system Debian would start it, so it is stopped and disabled again).
provision_rabbitmq() {
  [[ -x $RABBITMQ_SERVER ]] && return 0
  local why=""
  ((EUID == 0)) || why="this is not root"
  [[ -n $why ]] || command -v apt-get >/dev/null || why="apt-get was not found"
  if [[ -n $why ]]; then
    rabbitmq_ci && die "rabbitmq: rabbitmq-server is not installed and $why; CI needs it (as root: apt-get install rabbitmq-server)"
    log "rabbitmq: not installing rabbitmq-server: $why; the RabbitMQ tests will skip"
    RABBITMQ_MISSING=1
    return 0
  fi
  log "rabbitmq: installing Debian's rabbitmq-server with apt-get (once)"
  local logf="$DIR/logs/provision-rabbitmq.log"
  DEBIAN_FRONTEND=noninteractive apt-get -q -y -o Dpkg::Use-Pty=0 update >"$logf" 2>&1 &&
    DEBIAN_FRONTEND=noninteractive apt-get -q -y -o Dpkg::Use-Pty=0 install --no-install-recommends \
      rabbitmq-server >>"$logf" 2>&1 || die "rabbitmq: apt-get install rabbitmq-server failed (see $logf)"
  if command -v systemctl >/dev/null && systemctl is-active -q rabbitmq-server 2>/dev/null; then
    systemctl disable --now rabbitmq-server >>"$logf" 2>&1 || true
  fi
  [[ -x $RABBITMQ_SERVER ]] || die "rabbitmq: apt-get installed rabbitmq-server but $RABBITMQ_SERVER is missing"
}

rabbitmq_credentials() { # dir: sets RABBITMQ_USERNAME / RABBITMQ_PASSWORD (made once, then kept)
  local file=$1/credentials.env line
  mkdir -p "$1"
  if [[ ! -s $file ]]; then
    printf '%s\n' RABBITMQ_USERNAME=esm "RABBITMQ_PASSWORD=$(openssl rand -hex 12)" >"$file.tmp"
    chmod 600 "$file.tmp"
    mv "$file.tmp" "$file"
  fi
  while IFS= read -r line; do
    [[ $line =~ ^(RABBITMQ_USERNAME|RABBITMQ_PASSWORD)=([A-Za-z0-9]+)$ ]] &&
      printf -v "${BASH_REMATCH[1]}" '%s' "${BASH_REMATCH[2]}"
  done <"$file"
  return 0
}

# The definitions file: the test user (RabbitMQ's salted SHA-256 password hash) and its vhosts.
rabbitmq_definitions() { # file
  python3 - "$1" "$RABBITMQ_USERNAME" "$RABBITMQ_PASSWORD" "$RABBITMQ_EXTRA_VHOST" <<'EOF'
import base64, hashlib, json, os, sys
path, user, password, vhost = sys.argv[1:]
salt = os.urandom(4)
digest = base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()
everything = {"configure": ".*", "write": ".*", "read": ".*"}
json.dump({
    "users": [{"name": user, "password_hash": digest, "hashing_algorithm": "rabbit_password_hashing_sha256",
               "tags": ["administrator"]}],
    "vhosts": [{"name": "/"}, {"name": vhost}],
    "permissions": [{"user": user, "vhost": v, **everything} for v in ("/", vhost)],
}, open(path, "w"))
EOF
}

start_rabbitmq() {
  ((RABBITMQ_MISSING == 0)) || return 0
  local dir="$DIR/rabbitmq"
  mkdir -p "$dir/home" "$dir/mnesia" "$dir/log"
  rabbitmq_credentials "$dir"
  rabbitmq_definitions "$dir/definitions.json"
  chmod 600 "$dir/definitions.json"
  echo '[rabbitmq_management].' >"$dir/enabled_plugins"
  : >"$dir/rabbitmq-env.conf"
  cat >"$dir/rabbitmq.conf" <<EOF
# Written by scripts/backends: one node, loopback only, users from definitions.json.
listeners.tcp.1 = 127.0.0.1:$RABBITMQ_PORT
load_definitions = $dir/definitions.json
loopback_users = none
log.console = false
log.file.level = warning
disk_free_limit.absolute = 50MB
management.tcp.ip = 127.0.0.1
management.tcp.port = $RABBITMQ_MANAGEMENT_PORT
# Queue counts (messages ready, unacknowledged) refresh every quarter second for the tests that read them.
collect_statistics_interval = 250
EOF
  # The wrapper starts an epmd of its own on loopback (in the broker's process group), waits for
  # it, then runs the broker. Erlang's distribution listens on loopback too (inet_dist_use_interface).
  cat >"$dir/run.sh" <<EOF
#!/bin/sh
# Written by scripts/backends.
export HOME='$dir/home'
export ERL_EPMD_ADDRESS=127.0.0.1 ERL_EPMD_PORT=$RABBITMQ_EPMD_PORT
export RABBITMQ_NODENAME=esm-$RABBITMQ_PORT@localhost RABBITMQ_USE_LONGNAME=false
export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT=$RABBITMQ_PORT RABBITMQ_DIST_PORT=$RABBITMQ_DIST_PORT
export RABBITMQ_MNESIA_BASE='$dir/mnesia' RABBITMQ_LOG_BASE='$dir/log' RABBITMQ_CONFIG_FILE='$dir/rabbitmq.conf'
export RABBITMQ_ADVANCED_CONFIG_FILE='$dir/advanced.config' RABBITMQ_CONF_ENV_FILE='$dir/rabbitmq-env.conf'
export RABBITMQ_ENABLED_PLUGINS_FILE='$dir/enabled_plugins' RABBITMQ_PID_FILE='$dir/rabbitmq.pid'
export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS='-kernel inet_dist_use_interface {127,0,0,1}'
epmd -address 127.0.0.1 -port $RABBITMQ_EPMD_PORT &
i=0
while ! epmd -port $RABBITMQ_EPMD_PORT -names >/dev/null 2>&1 && [ \$i -lt 100 ]; do sleep 0.1; i=\$((i + 1)); done
# Not exec: this shell, whose command line names the backends directory, stays the recorded pid.
$RABBITMQ_SERVER &
broker=\$!
trap 'kill -TERM \$broker 2>/dev/null; wait \$broker' TERM INT
wait \$broker
EOF
  chmod 700 "$dir/run.sh"
  launch rabbitmq "$dir" /bin/sh "$dir/run.sh"
}

rabbitmq_exports() { # prints NAME value pairs, one a line (none when RabbitMQ is left out)
  [[ -x $RABBITMQ_SERVER && -s $DIR/rabbitmq/credentials.env ]] || return 0
  rabbitmq_credentials "$DIR/rabbitmq"
  printf '%s\n' RABBITMQ_PORT "$RABBITMQ_PORT" \
    RABBITMQ_URL "amqp://$RABBITMQ_USERNAME:$RABBITMQ_PASSWORD@127.0.0.1:$RABBITMQ_PORT/" \
    RABBITMQ_MANAGEMENT_URL "http://127.0.0.1:$RABBITMQ_MANAGEMENT_PORT" \
    RABBITMQ_USERNAME "$RABBITMQ_USERNAME" RABBITMQ_PASSWORD "$RABBITMQ_PASSWORD" \
    RABBITMQ_VHOST "$RABBITMQ_EXTRA_VHOST"
}
