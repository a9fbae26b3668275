#!/usr/bin/env bash
# Installs the real NETCONF peers the end-to-end tests drive (see test/e2e/peers/).
# Idempotent: does nothing when every package is present and the test user exists.
# Usage: bash test/peers/install.sh     (root, or a user with sudo)
set -euo pipefail

# prometheus: the alert rules run on a real Prometheus in the e2e suite; it ships promtool.
PACKAGES=(openssh-server openssh-client socat netconfd yangcli python3-ncclient sshpass openssl prometheus)
# libnetconf2 (the stack under Netopeer2): the tests build a call-home device and a manager
# from test/peers/libnetconf2/*.c against it; its headers include libssh's and OpenSSL's.
PACKAGES+=(libnetconf2-dev libyang2-dev libssh-dev libssl-dev gcc libc6-dev pkg-config)
# Cluster mode: replicas share ownership through a real Redis; one test puts HAProxy in front
# as the L4 load balancer a deployment would have. Both run as the tests' own processes.
PACKAGES+=(redis-server haproxy)

# A dedicated device account with a known password, so tests can exercise password
# authentication towards a device (sshd needs root to check passwords against shadow).
# Keep in sync with test/e2e/peers/constants.ts.
TEST_USER=chgwtest
TEST_PASSWORD=chgwtest-pw

if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
else
  command -v sudo >/dev/null || { echo "install.sh: not root and sudo is missing" >&2; exit 1; }
  SUDO=(sudo)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "install.sh: installing ${missing[*]}"
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "install.sh: peer packages already installed"
fi

# sshd (as root) refuses to run without its privilege separation directory; /run is
# a tmpfs on most machines, so the harness creates it again at run time as well.
[ -d /run/sshd ] || "${SUDO[@]}" mkdir -p /run/sshd

if [ "${PEERS_NO_TEST_USER:-}" = "1" ]; then
  echo "install.sh: PEERS_NO_TEST_USER=1, not creating $TEST_USER"
elif ! id "$TEST_USER" >/dev/null 2>&1; then
  echo "install.sh: creating device test user $TEST_USER"
  # sshd starts the netconf subsystem through the user's shell: it must be a real shell.
  "${SUDO[@]}" useradd --create-home --shell /bin/sh "$TEST_USER"
  echo "$TEST_USER:$TEST_PASSWORD" | "${SUDO[@]}" chpasswd
fi

for bin in /usr/sbin/sshd /usr/bin/ssh /usr/bin/ssh-keygen /usr/bin/socat /usr/sbin/netconfd \
           /usr/sbin/netconf-subsystem /usr/bin/sshpass /usr/bin/openssl /usr/bin/prometheus /usr/bin/promtool \
           /usr/bin/redis-server /usr/sbin/haproxy; do
  [ -x "$bin" ] || { echo "install.sh: $bin still missing after install" >&2; exit 1; }
done
pkg-config --exists libnetconf2 libyang libssh || { echo "install.sh: pkg-config cannot find libnetconf2, libyang or libssh after install" >&2; exit 1; }
/usr/bin/python3 -c 'import ncclient' || { echo "install.sh: python3-ncclient not importable by /usr/bin/python3" >&2; exit 1; }
echo "install.sh: real peers ready"
