#!/usr/bin/env bash
# Fails when the generated CRDs, RBAC or deepcopy functions differ from what
# `make manifests generate` produces from the Go sources, or when Go files are
# not gofmt-ed. It regenerates in place, so after a failure the tree holds the
# up-to-date files, ready to commit.
set -euo pipefail
cd "$(dirname "$0")/.."

generated=(config/crd/bases config/rbac/role.yaml $(find api -name 'zz_generated.*.go'))
before=$(mktemp -d)
trap 'rm -rf "$before"' EXIT
for f in "${generated[@]}"; do
  mkdir -p "$before/$(dirname "$f")"
  cp -r "$f" "$before/$f"
done

make --no-print-directory manifests generate >/dev/null

stale=0
for f in "${generated[@]}" $(find api -name 'zz_generated.*.go'); do
  if ! diff -r "$before/$f" "$f" >/dev/null 2>&1; then
    echo "stale generated file: $f"
    stale=1
  fi
done
if [ "$stale" = 1 ]; then
  echo "run 'make manifests generate' and commit the result"
  exit 1
fi

unformatted=$(gofmt -l $(find . -name '*.go' -not -path './bin/*'))
if [ -n "$unformatted" ]; then
  echo "not gofmt-ed (run 'make fmt'):"
  echo "$unformatted"
  exit 1
fi
echo "generated files are up to date, code is gofmt-ed"
