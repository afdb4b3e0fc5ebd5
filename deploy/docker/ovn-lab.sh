#!/bin/sh
# The native lab's OVN and Open vSwitch (deploy/lab, LAB.md), one role per container.
#
#   ovn-lab central   NB (tcp 6641) and SB (tcp 6642) ovsdb-servers, ovn-northd in the foreground
#   ovn-lab node      ovsdb-server + ovs-vswitchd (netdev datapath), br-int and br-ul, pods
#                     pod-a 10.16.0.11 and pod-b 10.16.0.12 on the logical switch ovn-default,
#                     a sink 198.51.100.2 behind the tunnel source 198.51.100.1 on br-ul, and
#                     ovn-controller in the foreground. Needs a privileged container.
#
# node reads NODE_NAME (the chassis, default node-1), OVN_NB_DB and OVN_SB_DB (the central's).
set -eu

OVS_RUN=/var/run/openvswitch
OVN_RUN=/var/run/ovn
mkdir -p "$OVS_RUN" "$OVN_RUN" /var/log/openvswitch /var/log/ovn /var/lib/ovn /etc/openvswitch

central() {
  for db in nb sb; do
    [ -f "/var/lib/ovn/$db.db" ] || ovsdb-tool create "/var/lib/ovn/$db.db" "/usr/share/ovn/ovn-$db.ovsschema"
  done
  ovsdb-server --detach --pidfile="$OVN_RUN/nb.pid" --log-file=/var/log/ovn/nb.log \
    --unixctl="$OVN_RUN/nb.ctl" --remote="punix:$OVN_RUN/ovnnb_db.sock" --remote=ptcp:6641:0.0.0.0 \
    /var/lib/ovn/nb.db
  ovsdb-server --detach --pidfile="$OVN_RUN/sb.pid" --log-file=/var/log/ovn/sb.log \
    --unixctl="$OVN_RUN/sb.ctl" --remote="punix:$OVN_RUN/ovnsb_db.sock" --remote=ptcp:6642:0.0.0.0 \
    /var/lib/ovn/sb.db
  exec ovn-northd --unixctl="$OVN_RUN/northd.ctl" \
    --ovnnb-db="unix:$OVN_RUN/ovnnb_db.sock" --ovnsb-db="unix:$OVN_RUN/ovnsb_db.sock"
}

# pod NAME IP MAC: a network namespace with eth0 on br-int, bound to the port NAME.default.
pod() {
  # A restarted container finds the namespaces of its previous run: start afresh.
  ip netns del "$1" 2>/dev/null || true
  ip netns add "$1"
  ip link add "v$1" type veth peer name eth0 netns "$1"
  ip link set "v$1" up
  ip -n "$1" link set lo up
  ip -n "$1" link set eth0 address "$3" up
  ip -n "$1" addr add "$2/16" dev eth0
  # The userspace datapath does not complete checksums left to offload (LAB.md).
  ip netns exec "$1" ethtool -K eth0 tx off >/dev/null
  ovs-vsctl --may-exist add-port br-int "v$1" -- set Interface "v$1" "external_ids:iface-id=$1.default"
  ovn-nbctl --db="$OVN_NB_DB" --may-exist lsp-add ovn-default "$1.default" \
    -- lsp-set-addresses "$1.default" "$3 $2"
}

node() {
  : "${OVN_NB_DB:?OVN_NB_DB must name the central NB, e.g. tcp:ovn-central:6641}"
  : "${OVN_SB_DB:?OVN_SB_DB must name the central SB, e.g. tcp:ovn-central:6642}"
  chassis=${NODE_NAME:-node-1}
  [ -f /etc/openvswitch/conf.db ] ||
    ovsdb-tool create /etc/openvswitch/conf.db /usr/share/openvswitch/vswitch.ovsschema
  ovsdb-server --detach --pidfile --log-file --remote="punix:$OVS_RUN/db.sock" /etc/openvswitch/conf.db
  ovs-vsctl --no-wait init -- set Open_vSwitch . \
    "external_ids:system-id=$chassis" "external_ids:ovn-remote=$OVN_SB_DB" \
    external_ids:ovn-encap-type=geneve external_ids:ovn-encap-ip=198.51.100.1 \
    external_ids:ovn-bridge=br-int
  ovs-vswitchd --detach --pidfile --log-file
  ovs-vsctl --may-exist add-br br-int -- set Bridge br-int datapath_type=netdev fail-mode=secure
  ovs-vsctl --may-exist add-br br-ul -- set Bridge br-ul datapath_type=netdev

  ovn-nbctl --db="$OVN_NB_DB" --may-exist ls-add ovn-default
  pod pod-a 10.16.0.11 00:00:00:00:00:01
  pod pod-b 10.16.0.12 00:00:00:00:00:02

  # Transport: the tunnel source on br-ul's internal port, the sink behind ul0, where the
  # capture exporter (sharing this network namespace) listens.
  ip netns del sink 2>/dev/null || true
  ip netns add sink
  ip link add ul0 type veth peer name eth0 netns sink
  ip link set ul0 up
  ip -n sink link set lo up
  ip -n sink link set eth0 up
  ip -n sink addr add 198.51.100.2/24 dev eth0
  ovs-vsctl --may-exist add-port br-ul ul0
  ip addr replace 198.51.100.1/24 dev br-ul
  ip link set br-ul up

  exec ovn-controller --pidfile --log-file "unix:$OVS_RUN/db.sock"
}

case "${1:-}" in
  central) central ;;
  node) node ;;
  *)
    echo "usage: ovn-lab central|node" >&2
    exit 64
    ;;
esac
