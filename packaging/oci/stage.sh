#!/bin/sh
# The image's build context: the packed release unpacked into CTX/app with its production dependencies, installed
# by npm from the repository's lockfile (so the versions are the tested ones), then the Containerfile.
#   packaging/oci/stage.sh bootfarm-X.tgz CTX
set -eu
tgz=$1 ctx=$2
root=$(cd "$(dirname "$0")/../.." && pwd)
rm -rf "$ctx" && mkdir -p "$ctx/app"
tar -xzf "$tgz" -C "$ctx/app" --strip-components=1 --no-same-owner
cp "$root/package-lock.json" "$ctx/app/"
(cd "$ctx/app" && npm ci --omit=dev --ignore-scripts --prefer-offline --no-audit --no-fund --loglevel=error)
# --ignore-scripts skips our postinstall too: the dependency patches (packaging/patches/apply.cjs) are applied here
node "$ctx/app/packaging/patches/apply.cjs" "$ctx/app"
rm "$ctx/app/package-lock.json"
cp "$root/packaging/oci/Containerfile" "$ctx/"
