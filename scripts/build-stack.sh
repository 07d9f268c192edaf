#!/usr/bin/env bash
# Build the pinned OpenTelemetry Collector distribution and Jaeger v2 from the Go module proxy,
# once, into a cache outside the repository. Later runs find the binaries and return at once.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cache=${PROVTRACE_CACHE:-$HOME/.cache/provtrace}
builder_version=v0.161.0
# Jaeger v2's release tags are not valid Go module versions and the proxy here refuses the
# pseudo-version of the v2.20.0 commit (403), so Jaeger is pinned by the module version it serves,
# v1.76.0 (the companion tag of the Jaeger v2.13.0 release), in collector-config/jaeger-build:
# a tool module whose go.sum pins every dependency.
jaeger_version=v2.13.0
jaeger_module="$here/collector-config/jaeger-build"

manifest="$here/collector-config/builder-config.yaml"
manifest_hash=$(sha256sum "$manifest" | cut -c1-12)
collector_dir="$cache/otelcol-provtrace-$builder_version-$manifest_hash"
jaeger_dir="$cache/jaeger-$jaeger_version-$(cat "$jaeger_module/go.mod" "$jaeger_module/go.sum" | sha256sum | cut -c1-12)"

export GOFLAGS=${GOFLAGS:--modcacherw}
export GOTOOLCHAIN=${GOTOOLCHAIN:-local}

log() { printf '[build-stack] %s\n' "$*" >&2; }

build_collector() {
  if [ -x "$collector_dir/otelcol-provtrace" ]; then
    return
  fi
  log "building the collector (first time only; several minutes) into $collector_dir"
  mkdir -p "$cache/tools"
  if [ ! -x "$cache/tools/builder-$builder_version" ]; then
    log "installing go.opentelemetry.io/collector/cmd/builder@$builder_version"
    GOBIN="$cache/tools/gobin" go install "go.opentelemetry.io/collector/cmd/builder@$builder_version"
    mv "$cache/tools/gobin/builder" "$cache/tools/builder-$builder_version"
  fi
  local work
  work=$(mktemp -d "$cache/otelcol-build.XXXXXX")
  sed "s#^dist:#dist:\n  output_path: $work#" "$manifest" > "$work.yaml"
  "$cache/tools/builder-$builder_version" --config="$work.yaml"
  mkdir -p "$collector_dir"
  mv "$work/otelcol-provtrace" "$collector_dir/otelcol-provtrace.tmp"
  mv "$collector_dir/otelcol-provtrace.tmp" "$collector_dir/otelcol-provtrace"
  rm -rf "$work" "$work.yaml"
  log "collector ready: $collector_dir/otelcol-provtrace"
}

build_jaeger() {
  if [ -x "$jaeger_dir/jaeger" ]; then
    return
  fi
  log "building Jaeger $jaeger_version (first time only; several minutes) into $jaeger_dir"
  mkdir -p "$jaeger_dir"
  (cd "$jaeger_module" && CGO_ENABLED=0 go build -trimpath -o "$jaeger_dir/jaeger.tmp" github.com/jaegertracing/jaeger/cmd/jaeger)
  mv "$jaeger_dir/jaeger.tmp" "$jaeger_dir/jaeger"
  log "jaeger ready: $jaeger_dir/jaeger"
}

case "${1:-all}" in
  collector) build_collector ;;
  jaeger) build_jaeger ;;
  paths) printf '%s\n%s\n' "$collector_dir/otelcol-provtrace" "$jaeger_dir/jaeger" ;;
  all) build_collector; build_jaeger ;;
  *) echo "usage: $0 [all|collector|jaeger|paths]" >&2; exit 2 ;;
esac
