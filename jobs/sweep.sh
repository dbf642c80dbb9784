#!/usr/bin/env bash
# Submit one Ray job per sweep point, each writing its own dataset folder.
#   RAY_ADDRESS=http://<head>:8265 jobs/sweep.sh /mnt/sweeps writer=llama,qwen,gemma,mistral,gpt \
#       -- budget.hours=50
# Points are the comma-separated values of ONE key (like Hydra's --multirun); everything after
# `--` is passed to every point. Alternatively run a whole Hydra multirun inside one job:
#   jobs/submit.sh generate --multirun writer=llama,qwen 'sink.dir=/mnt/sweeps/${writer}'
set -euo pipefail
cd "$(dirname "$0")/.."
root=${1:?usage: jobs/sweep.sh <output root> key=v1,v2,... [-- common overrides]}
sweep=${2:?usage: jobs/sweep.sh <output root> key=v1,v2,... [-- common overrides]}
shift 2
[ "${1:-}" = "--" ] && shift
key=${sweep%%=*}
IFS=, read -r -a values <<< "${sweep#*=}"
for value in "${values[@]}"; do
  echo "submitting ${key}=${value}"
  NO_WAIT=${NO_WAIT-1} jobs/submit.sh generate "${key}=${value}" \
    "sink.dir=${root}/${key//./_}=${value}" "$@"
done
