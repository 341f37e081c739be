#!/bin/sh
# --on-promote hook: take over the service's floating IP address when this mirror is promoted,
# the way a standby in the classic HA design assumed the failed server's address.
#
#   mimic mirror /srv/www --primary ws://10.0.0.11:7070,ws://10.0.0.12:7070 \
#     --listen 10.0.0.12:7070 --token-file /etc/mimic/token \
#     --on-promote /usr/local/lib/mimic/on-promote-floating-ip.sh
#
# mimic runs it after the promotion is durable, with MIMIC_EPOCH (the new term),
# MIMIC_EPOCH_NODE and MIMIC_LISTEN (the new primary's URL) in the environment; with --etcd
# also MIMIC_ACTION=promote, MIMIC_REASON (failover, manual), MIMIC_CLUSTER, MIMIC_NODE_ID,
# MIMIC_TERM and MIMIC_LEADER_URL. Exiting non-zero with --etcd gives the leadership up, so
# that another mirror takes over (e.g. the address could not be taken here).
# The counterpart for the node that stops being the primary: on-demote-floating-ip.sh.
# Set FLOATING_IP (with prefix length) and FLOATING_DEV, e.g. in the systemd unit.
# Needs CAP_NET_ADMIN (run as root, or grant AmbientCapabilities=CAP_NET_ADMIN).
set -eu
: "${FLOATING_IP:?set FLOATING_IP, e.g. 10.0.0.10/24}"
: "${FLOATING_DEV:?set FLOATING_DEV, e.g. eth0}"

logger -t mimic "promoted to epoch ${MIMIC_EPOCH} (${MIMIC_LISTEN}); taking over ${FLOATING_IP} on ${FLOATING_DEV}"
# `replace` is idempotent: running the hook twice does no harm.
ip addr replace "${FLOATING_IP}" dev "${FLOATING_DEV}"
# Tell the neighbours at once instead of waiting for their ARP caches to expire.
if command -v arping >/dev/null 2>&1; then
  arping -c 3 -U -I "${FLOATING_DEV}" "${FLOATING_IP%/*}" >/dev/null 2>&1 || true
fi
