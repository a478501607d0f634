# Sourced by check.sh: make PostgreSQL's server binaries available for the tests, which start (and
# stop) a throwaway cluster of their own on loopback (tests/pg_cluster.py). On a clean Debian
# machine run as root they come from Debian's packages; no cluster or service is set up by this.
pg_installed() {
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || command -v initdb >/dev/null
}

ensure_postgres() {
  if ! pg_installed && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    # No "main" cluster: postgresql-common reads this before creating one at install time.
    mkdir -p /etc/postgresql-common
    [ -f /etc/postgresql-common/createcluster.conf ] \
      || echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.conf
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends -o Dpkg::Options::=--force-confold postgresql >/dev/null
  fi
  if pg_installed; then
    export RS3GW_REQUIRE_POSTGRES=1  # installed: a cluster that fails to start fails the tests
  else
    echo "PostgreSQL is not installed (and cannot be, here): its tests will be skipped" >&2
  fi
}

# What the suite drives that comes from Debian rather than PyPI: rclone (a real client) and ffmpeg
# (the video transformations shell out to it); without them their tests skip with a reason.
ensure_debian_clients() {
  local pkg missing=()
  for pkg in rclone ffmpeg; do command -v "$pkg" >/dev/null || missing+=("$pkg"); done
  if [ ${#missing[@]} -gt 0 ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    { apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1 \
      || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; }; } \
      || echo "${missing[*]} could not be installed: their tests will be skipped" >&2
  fi
}
