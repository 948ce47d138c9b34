#!/usr/bin/env bash
# Builds the demo image `meridian:local` from a static release binary:
# no base image is pulled (the image is FROM scratch).
set -euo pipefail
cd "$(dirname "$0")/.."
RUSTFLAGS='-C target-feature=+crt-static' \
  cargo build --release --bin meridian --target x86_64-unknown-linux-gnu
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
cp target/x86_64-unknown-linux-gnu/release/meridian docker/Dockerfile "$ctx/"
docker build -q -t meridian:local "$ctx" >/dev/null
echo "built meridian:local ($(du -h "$ctx/meridian" | cut -f1) binary)"
