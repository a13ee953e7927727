# shellcheck shell=bash
# ActiveMQ Classic for scripts/backends (sourced by it): the broker jars from Maven Central
# (backends.d/activemq-pom.xml, fetched by provision_jars), backends.d/ActiveMqBroker.java compiled
# against them, and one broker: STOMP on 127.0.0.1:$ACTIVEMQ_PORT, a KahaDB store in
# $DIR/activemq/data (messages survive a restart), one user (ACTIVEMQ_USERNAME/PASSWORD, made once
# and kept), broker-side redelivery with ActiveMQ's default policy, then ActiveMQ.DLQ.

ACTIVEMQ_HEAP_OPTS='-Xms64m -Xmx256m'

activemq_credentials() { # sets ACTIVEMQ_USERNAME / ACTIVEMQ_PASSWORD (made once, then kept)
  local file=$DIR/activemq/credentials.env line
  mkdir -p "$DIR/activemq"
  if [[ ! -s $file ]]; then
    printf '%s\n' ACTIVEMQ_USERNAME=esmmq "ACTIVEMQ_PASSWORD=$(openssl rand -hex 12)" >"$file.tmp"
    chmod 600 "$file.tmp"
    mv "$file.tmp" "$file"
  fi
  while IFS= read -r line; do
    [[ $line =~ ^(ACTIVEMQ_USERNAME|ACTIVEMQ_PASSWORD)=([A-Za-z0-9]+)$ ]] &&
      printf -v "${BASH_REMATCH[1]}" '%s' "${BASH_REMATCH[2]}"
  done <"$file"
  return 0
}

start_activemq() {
  local dir="$DIR/activemq" src="$LIBEXEC/ActiveMqBroker.java" fp
  need javac "to compile the ActiveMQ broker's launcher (a JDK 17 or newer)"
  fp=$(cat "$src" "$dir/.provisioned" | sha256sum | cut -d' ' -f1)
  if [[ ! -f $dir/classes/ActiveMqBroker.class || "$(cat "$dir/classes/.built" 2>/dev/null)" != "$fp" ]]; then
    rm -rf "$dir/classes"
    mkdir -p "$dir/classes"
    javac -d "$dir/classes" -cp "$dir/lib/*" "$src" || die "activemq: javac $src failed"
    echo "$fp" >"$dir/classes/.built"
  fi
  activemq_credentials
  # shellcheck disable=SC2086 # the heap options are words
  # The password goes in the environment: never on the command line (nor the log's first line).
  ACTIVEMQ_PASSWORD=$ACTIVEMQ_PASSWORD launch activemq "$dir" java $ACTIVEMQ_HEAP_OPTS -Djava.awt.headless=true \
    -Dorg.slf4j.simpleLogger.defaultLogLevel=warn -cp "$dir/lib/*:$dir/classes" \
    ActiveMqBroker "$dir/data" "$ACTIVEMQ_PORT" "$ACTIVEMQ_USERNAME" "$ACTIVEMQ_ADMIN_PORT"
}
