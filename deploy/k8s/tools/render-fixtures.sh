#!/bin/sh
# Renders the base and each overlay with the real kustomize (`kubectl kustomize`) into
# rendered/, the reference test/deploy-k8s.test.ts holds tools/kustomize.ts to. Run it after
# changing any manifest, from anywhere: sh deploy/k8s/tools/render-fixtures.sh
set -eu
cd "$(dirname "$0")/.."
version=$(kubectl version --client -o json | sed -n 's/.*"kustomizeVersion": *"\([^"]*\)".*/\1/p')
for target in base overlays/external overlays/bundled; do
  name=$(basename "$target")
  {
    echo "# kubectl kustomize deploy/k8s/$target (kustomize $version); regenerate with tools/render-fixtures.sh"
    kubectl kustomize "$target"
  } >"rendered/$name.yaml"
done
../../node_modules/.bin/prettier --log-level warn --write rendered
