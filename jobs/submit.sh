#!/usr/bin/env bash
# Submit one duplexsynth job to a Ray cluster; the checkout travels as the job's working_dir.
#   RAY_ADDRESS=http://<head>:8265 jobs/submit.sh generate budget.hours=100 sink.dir=/mnt/ds
# Extra runtime_env (pip packages, env vars) via RUNTIME_ENV_JSON, e.g.
#   RUNTIME_ENV_JSON='{"pip": ["duplexsynth[openai]"], "env_vars": {"OPENAI_API_KEY_ENV": "..."}}'
# Secrets: pass the NAME of an env var that exists on the cluster, never the value.
set -euo pipefail
cd "$(dirname "$0")/.."
job=${1:?usage: jobs/submit.sh <job> [hydra overrides ...]}
shift
: "${RAY_ADDRESS:?set RAY_ADDRESS to the cluster dashboard, e.g. http://127.0.0.1:8265}"
args=(--address "$RAY_ADDRESS" --working-dir .)
if [ -n "${RUNTIME_ENV_JSON:-}" ]; then args+=(--runtime-env-json "$RUNTIME_ENV_JSON"); fi
if [ -n "${SUBMISSION_ID:-}" ]; then args+=(--submission-id "$SUBMISSION_ID"); fi
if [ -n "${NO_WAIT:-}" ]; then args+=(--no-wait); fi
exec "${RAY:-ray}" job submit "${args[@]}" -- "${PYTHON:-python}" -m pipeline "$job" "$@"
