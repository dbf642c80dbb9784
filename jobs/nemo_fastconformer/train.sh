#!/usr/bin/env bash
# Fine-tune a NeMo FastConformer on one duplexsynth mix point (GPU only).
#   jobs/nemo_fastconformer/train.sh MIX_DIR VAL_MANIFEST [extra NeMo overrides...]
# Needs: NVIDIA GPU(s), NeMo (pip install "nemo_toolkit[asr]") and a NeMo checkout for the
# example scripts at $NEMO_DIR. MIX_DIR is an out.dir of `duplexsynth mix` (train_manifest.json).
set -euo pipefail

if [[ $# -lt 2 ]]; then
  sed -n '2,5p' "$0"; exit 2
fi
MIX_DIR=$(realpath "$1"); VAL_MANIFEST=$(realpath "$2"); shift 2
NEMO_DIR=${NEMO_DIR:?set NEMO_DIR to a NeMo checkout (examples/ and scripts/)}
HERE=$(cd "$(dirname "$0")" && pwd)
VOCAB=${VOCAB:-1024}
TRAIN_MANIFEST="$MIX_DIR/train_manifest.json"
[[ -f "$TRAIN_MANIFEST" ]] || { echo "no $TRAIN_MANIFEST: run duplexsynth mix first" >&2; exit 2; }
command -v nvidia-smi >/dev/null || { echo "no GPU here: this recipe needs CUDA GPUs" >&2; exit 2; }

# 1. Tokenizer over the training text, with <sc> as one user-defined token.
TOKENIZER_ROOT="$MIX_DIR/tokenizer"
python "$NEMO_DIR/scripts/tokenizers/process_asr_text_tokenizer.py" \
  --manifest="$TRAIN_MANIFEST" --data_root="$TOKENIZER_ROOT" --vocab_size="$VOCAB" \
  --tokenizer=spe --spe_type=bpe --spe_user_defined_symbols "<sc>" --log
TOKENIZER_DIR=$(ls -d "$TOKENIZER_ROOT"/tokenizer_spe_bpe_v"$VOCAB"*)

# 2. Fine-tune from the Hungarian checkpoint with the new tokenizer.
python "$NEMO_DIR/examples/asr/speech_to_text_finetune.py" \
  --config-path="$HERE" --config-name=finetune_fastconformer \
  model.train_ds.manifest_filepath="$TRAIN_MANIFEST" \
  model.validation_ds.manifest_filepath="$VAL_MANIFEST" \
  model.tokenizer.dir="$TOKENIZER_DIR" \
  exp_manager.exp_dir="$MIX_DIR/nemo_runs" "$@"
