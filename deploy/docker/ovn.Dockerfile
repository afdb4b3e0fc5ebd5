# syntax=docker/dockerfile:1
# OVN and Open vSwitch from Debian 12, the packages and versions of the native lab (LAB.md):
# `ovn-lab central` runs the Northbound and Southbound databases and ovn-northd, `ovn-lab node`
# an Open vSwitch (userspace datapath) with ovn-controller, two pods and a mirror sink.
#
#   docker build -f deploy/docker/ovn.Dockerfile -t ovntap-ovn .
FROM debian:bookworm-slim
RUN apt-get update \
  && apt-get install -y --no-install-recommends \
    openvswitch-switch ovn-central ovn-host iproute2 iputils-ping ethtool tcpdump \
  && rm -rf /var/lib/apt/lists/*
COPY deploy/docker/ovn-lab.sh /usr/local/bin/ovn-lab
ENTRYPOINT ["/usr/local/bin/ovn-lab"]
