#!/usr/bin/env bash
# Runs `make` targets as the stages of a run (make test, CI), each between two timestamped lines, and ends with a
# table of every stage's time; stops at the first stage that fails, naming it. A stage written `a+b+c` runs those
# targets side by side (light Molecule scenarios that mostly wait on their nodes), each into its own log, printed
# whole when all are done.
#   tools/stages.sh lint pytest molecule-default molecule-jetson+molecule-ollama
set -uo pipefail
cd "$(dirname "$0")/.."
logs=.cache/stages
mkdir -p "${logs}"
summary=()
started_all=$(date +%s)
stamp() { date -u '+%Y-%m-%dT%H:%M:%SZ'; }
human() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

run_side_by_side() {
  local pids=() targets=() rc=0 target i
  IFS=+ read -r -a targets <<<"$1"
  for target in "${targets[@]}"; do
    make --no-print-directory "${target}" >"${logs}/${target}.log" 2>&1 &
    pids+=($!)
  done
  for i in "${!targets[@]}"; do
    local target_rc=0 took
    wait "${pids[$i]}" || target_rc=$?
    took=$(($(date +%s) - started))
    echo "---- ${targets[$i]} (exit ${target_rc}, done within $(human "${took}")) ----"
    cat "${logs}/${targets[$i]}.log"
    summary+=("  ${targets[$i]} exit ${target_rc}")
    [ "${target_rc}" -eq 0 ] || rc=${target_rc}
  done
  return "${rc}"
}

for stage in "$@"; do
  echo "==> $(stamp) stage ${stage}: start"
  started=$(date +%s)
  if [[ "${stage}" == *+* ]]; then
    run_side_by_side "${stage}"
  else
    make --no-print-directory "${stage}"
  fi
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
