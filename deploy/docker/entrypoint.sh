#!/bin/sh
# The image's entrypoint: runs one ovntap program, named by the first argument or by SERVICE.
#
#   ovntap-entrypoint intake            SERVICE=intake ovntap-entrypoint
#   ovntap-entrypoint cli create web -n shop --pod web-0 --collector
set -eu

if [ "$#" -gt 0 ]; then
  service=$1
  shift
else
  service=${SERVICE:-}
fi

case "$service" in
  intake | ovn-applier | capture-exporter | node-agent | k8s-controller | console)
    exec node "/app/services/$service/dist/main.js" "$@"
    ;;
  cli | ovntap)
    exec node /app/services/cli/bin/ovntap.js "$@"
    ;;
  *)
    echo "ovntap: name the program to run (an argument, or SERVICE): intake, ovn-applier, capture-exporter, node-agent, k8s-controller, console, or cli" >&2
    exit 64
    ;;
esac
