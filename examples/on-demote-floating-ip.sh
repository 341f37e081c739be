#!/bin/sh
# --on-demote hook: give the floating IP address up when this node stops being the primary
# (fenced by a newer epoch, or its etcd lease ran out), so that only the new primary answers.
#
#   mimic primary /srv/www --listen 10.0.0.11:7070 --etcd http://10.0.0.21:2379 --cluster www \
#     --on-demote /usr/local/lib/mimic/on-demote-floating-ip.sh
#
# mimic runs it with MIMIC_ACTION=demote, MIMIC_REASON (lease-lost, newer-epoch), MIMIC_TERM,
# MIMIC_CLUSTER, MIMIC_NODE_ID and MIMIC_LEADER_URL (the new primary, when known).
# Set FLOATING_IP (with prefix length) and FLOATING_DEV as for on-promote-floating-ip.sh.
set -eu
: "${FLOATING_IP:?set FLOATING_IP, e.g. 10.0.0.10/24}"
: "${FLOATING_DEV:?set FLOATING_DEV, e.g. eth0}"

logger -t mimic "demoted (${MIMIC_REASON}) at term ${MIMIC_TERM}; releasing ${FLOATING_IP} on ${FLOATING_DEV}"
# Already gone is fine: the hook may run on a node that never held the address.
ip addr del "${FLOATING_IP}" dev "${FLOATING_DEV}" 2>/dev/null || true
