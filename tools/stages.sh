#!/usr/bin/env bash
# Runs `make` targets one after the other as the stages of a run (make test, CI), each between two timestamped
# lines, and ends with a table of every stage's time; stops at the first stage that fails, naming it.
#   tools/stages.sh lint pytest molecule-default ...
set -uo pipefail
cd "$(dirname "$0")/.."
summary=()
started_all=$(date +%s)
stamp() { date -u '+%Y-%m-%dT%H:%M:%SZ'; }
human() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }
for stage in "$@"; do
  echo "==> $(stamp) stage ${stage}: start"
  started=$(date +%s)
  make --no-print-directory "${stage}"
  rc=$?
  took=$(($(date +%s) - started))
  if [ "${rc}" -ne 0 ]; then
    echo "==> $(stamp) stage ${stage}: FAILED (exit ${rc}) after $(human "${took}")"
    summary+=("${stage} FAILED $(human "${took}")")
    printf '    %s\n' "${summary[@]}"
    exit "${rc}"
  fi
  echo "==> $(stamp) stage ${stage}: passed in $(human "${took}")"
  summary+=("${stage} passed $(human "${took}")")
done
echo "==> $(stamp) all stages passed in $(human $(($(date +%s) - started_all)))"
printf '    %s\n' "${summary[@]}"
