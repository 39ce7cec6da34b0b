#!/usr/bin/env bash
# Exports a Whisper model for transformers.js (npm @huggingface/transformers,
# ONNX Runtime Web) from the same CTranslate2 weights our engine loads, for
# scripts/bench-whisper-browser.mjs. No registry ships its ONNX Whisper
# weights, so they are made here (shared/notes/whisper.md §3 and §9):
# CT2 → Hugging Face safetensors → optimum's ONNX export → int8 copies.
#
#   scripts/transformers-js-model.sh [tiny.en|base]   prints the model folder
#
# Everything goes under ~/.cache/potluck/transformers-js/, never into the
# repository:
#   venv/          torch 2.15, transformers 4.57, optimum-onnx 0.1, onnxruntime
#   cuda-stubs/    stand-in CUDA libraries (every call fails), so that PyPI's
#                  torch (a CUDA build) imports without 3 GB of nvidia-* wheels
#   node_modules/  @huggingface/transformers 4.3.1: the browser bundle and
#                  onnxruntime-web's wasm files, served by the benchmark
#   models/MODEL/  what transformers.js loads: config, generation config,
#                  tokenizer, preprocessor config and onnx/encoder_model.onnx,
#                  onnx/decoder_model_merged.onnx (fp32) and *_quantized.onnx (q8)
# Idempotent: each step is skipped when its output is there for the same pins.
set -euo pipefail
cd "$(dirname "$0")/.."

model="${1:-tiny.en}"
case "$model" in tiny.en | base) ;; *) echo "unknown model $model (tiny.en or base)" >&2; exit 2 ;; esac
cache="$HOME/.cache/potluck/transformers-js"
venv="$cache/venv"
stubs="$cache/cuda-stubs"
out="$cache/models/$model"
# Every Python package pinned and installed without dependency resolution:
# pip otherwise goes after torch's CUDA dependencies (3 GB of nvidia-* and
# triton wheels), even for a torch installed with --no-deps. optimum-onnx 0.1
# needs transformers < 4.58; without accelerate the tied token embedding is
# exported twice (a 198 MB decoder instead of 118 MB).
torch_pin="torch==2.15.0"
pins=(transformers==4.57.6 optimum==2.1.0 optimum-onnx==0.1.0 onnxruntime==1.32.0 onnx==1.23.2 accelerate==1.15.0
  tokenizers==0.22.2 safetensors==0.8.0 huggingface_hub==0.36.2 hf-xet==1.8.0 numpy==2.4.6 ml_dtypes==0.6.0
  protobuf==7.36.2 flatbuffers==25.12.19 packaging==26.4 psutil==7.2.2 PyYAML==6.0.4 regex==2026.11.19
  requests==2.34.2 certifi==2026.10.19.post1 charset-normalizer==3.5.3 idna==3.20 urllib3==2.8.0 tqdm==4.70.1
  filelock==4.3.1 fsspec==2026.9.0 Jinja2==3.1.6 MarkupSafe==3.0.4 mpmath==1.3.0 networkx==3.6.1
  sympy==1.14.0 typing_extensions==4.16.0 setuptools==84.2.1)
npm_pin="@huggingface/transformers@4.3.1"
# Bump when the conversion or export below changes, to redo cached models.
recipe=1
mkdir -p "$cache"

# One thread and the stubs on the library path for every Python step.
py() { LD_LIBRARY_PATH="$stubs" OMP_NUM_THREADS=1 "$venv/bin/python" "$@"; }

if [ "$(cat "$venv/.pins" 2>/dev/null)" != "$torch_pin ${pins[*]}" ]; then
  rm -rf "$venv" "$stubs"
  python3 -m venv "$venv"
  # torch without its dependencies: on Linux they are CUDA. The wheel
  # (539 MB) is kept, so that a new venv does not download it again.
  "$venv/bin/pip" download --quiet --no-deps --only-binary=:all: --dest "$cache/wheels" "$torch_pin" >&2
  "$venv/bin/pip" install --quiet --no-deps --no-index --find-links "$cache/wheels" "$torch_pin" >&2
  "$venv/bin/pip" install --quiet --no-deps --only-binary=:all: "${pins[@]}" >&2
  echo "$torch_pin ${pins[*]}" > "$venv/.pins"
fi

if [ ! -f "$stubs/.done" ]; then
  # libtorch_cpu.so itself links libcudart and libcupti, so `import torch`
  # needs every CUDA library it names. Each stub defines the symbols torch
  # imports from it (with their symbol versions); every call fails with
  # cudaErrorNoDevice, so torch sees no GPU and runs on the CPU.
  rm -rf "$stubs"
  mkdir -p "$stubs"
  "$venv/bin/python" - "$venv/lib/python3"*/site-packages/torch/lib "$stubs" <<'PY'
import os, re, subprocess, sys

torch_lib, out = sys.argv[1], sys.argv[2]
cuda = re.compile(r"^lib(cu|nv|nccl)")
# Unversioned imports, by name: which library defines them.
by_prefix = [("cuFile", "libcufile.so.0"), ("cusparseLt", "libcusparseLt.so.0"), ("nccl", "libnccl.so.2"),
             ("nvshmem", "libnvshmem_host.so.3"), ("cu", "libcuda.so.1")]
libs = {}  # file -> {symbol version or None -> symbols}
readelf = lambda *a: subprocess.run(["readelf", "-W", *a], capture_output=True, text=True, check=True).stdout
for name in sorted(os.listdir(torch_lib)):
    if not name.endswith(".so"):
        continue
    path = os.path.join(torch_lib, name)
    for lib in re.findall(r"\(NEEDED\).*\[(.*)\]", readelf("-d", path)):
        if cuda.match(lib):
            libs.setdefault(lib, {})
    version_file, current = {}, None
    for line in readelf("-V", path).splitlines():
        if m := re.search(r"File: (\S+)", line):
            current = m.group(1)
        elif (m := re.search(r"Name: (\S+)", line)) and current:
            version_file[m.group(1)] = current
    for line in readelf("--dyn-syms", path).splitlines():
        f = line.split()
        if len(f) < 8 or f[6] != "UND":
            continue
        sym, _, version = f[7].partition("@")
        version = version.lstrip("@")
        if version:
            lib = version_file.get(version)
            if lib and cuda.match(lib):
                libs.setdefault(lib, {}).setdefault(version, set()).add(sym)
        elif sym.startswith(("cu", "nccl", "nvshmem")) and not sym.startswith("cub"):
            lib = next(lib for prefix, lib in by_prefix if sym.startswith(prefix))
            libs.setdefault(lib, {}).setdefault(None, set()).add(sym)
for lib, versions in libs.items():
    c = ['static const char msg[] = "no CUDA (potluck stub)";']
    script = []
    for version, syms in versions.items():
        for s in sorted(syms):
            c.append(f"const char *{s}(void) {{ return msg; }}" if "Error" in s and ("String" in s or "Name" in s)
                     else f"long {s}(void) {{ return 100; }}")
        script.append(f"{version or 'STUB'} {{ global: {' '.join(s + ';' for s in sorted(syms))} {'local: *;' if version else ''} }};")
    src = os.path.join(out, lib + ".c")
    open(src, "w").write("\n".join(c) + "\n")
    open(src + ".map", "w").write("\n".join(script or ["STUB { local: *; };"]) + "\n")
    subprocess.run(["cc", "-shared", "-fPIC", "-o", os.path.join(out, lib), src, f"-Wl,-soname,{lib}",
                    f"-Wl,--version-script={src}.map"], check=True)
PY
  py -c "import torch; assert not torch.cuda.is_available()"
  touch "$stubs/.done"
fi

if [ ! -f "$cache/node_modules/@huggingface/transformers/package.json" ] \
  || [ "$(cat "$cache/.npm-pin" 2>/dev/null)" != "$npm_pin" ]; then
  # Its own folder, not the project's package.json: only the benchmark uses it.
  # No install scripts: onnxruntime-node and sharp (Node only) are never run.
  npm install --prefix "$cache" --ignore-scripts --no-audit --no-fund --loglevel=error "$npm_pin" >&2
  echo "$npm_pin" > "$cache/.npm-pin"
fi

ct2="$(scripts/fetch-models.sh)/$model"
stamp="recipe $recipe $torch_pin ${pins[*]} $(sha256sum "$ct2/model.bin" | cut -d' ' -f1)"
if [ "$(cat "$out/.done" 2>/dev/null)" = "$stamp" ]; then
  echo "$out"
  exit 0
fi
work="$cache/work/$model"
rm -rf "$work" "$out"
mkdir -p "$work" "$out/onnx"

# 1. CTranslate2 → Hugging Face: the names of notes §3, fused Q/K/V and K/V
#    split by rows, the zero key bias dropped, proj_out left tied to
#    embed_tokens; configs from the tensor shapes, num_heads and the package's
#    config.json and vocabulary.txt (special ids and suppress lists, notes §5).
py - "$ct2" "$work/hf" <<'PY'
import json, os, struct, sys

import numpy as np
from safetensors.numpy import save_file

src, dst = sys.argv[1], sys.argv[2]
os.makedirs(dst, exist_ok=True)

# model.bin (notes §2): little-endian, unaligned, versions 1–6.
DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}
LEGACY = {4: np.float32, 2: np.int16, 1: np.int8}
buf = open(os.path.join(src, "model.bin"), "rb").read()
pos = 0


def take(fmt):
    global pos
    values = struct.unpack_from("<" + fmt, buf, pos)
    pos += struct.calcsize("<" + fmt)
    return values


def string():
    global pos
    (n,) = take("H")
    s = buf[pos : pos + n - 1].decode()
    pos += n
    return s


(version,) = take("I")
if version > 6:
    sys.exit(f"model.bin version {version} is newer than 6")
if version >= 2:
    spec = string()
    take("I")
    if spec != "WhisperSpec":
        sys.exit(f"model.bin is a {spec} model, not WhisperSpec")
ct2 = {}
for _ in range(take("I")[0]):
    name = string()
    (rank,) = take("B")
    shape = take(f"{rank}I")
    if version >= 4:
        dtype_id, nbytes = take("BI")
        dtype = DTYPES[dtype_id]
    else:
        item, count = take("BI")
        dtype, nbytes = LEGACY[item], item * count
    ct2[name] = np.frombuffer(buf, dtype, nbytes // np.dtype(dtype).itemsize, pos).reshape(shape)
    pos += nbytes
if version >= 3:
    for _ in range(take("I")[0]):
        alias, target = string(), string()
        ct2[alias] = ct2[target]
if pos != len(buf):
    sys.exit(f"model.bin: {len(buf) - pos} bytes after the last variable")

f32 = lambda a: np.ascontiguousarray(a, dtype=np.float32)
d = ct2["encoder/conv1/weight"].shape[0]
hf = {}


def copy(to, frm):
    hf[to] = f32(ct2[frm])


def linear(to, frm):
    copy(to + ".weight", frm + "/weight")
    copy(to + ".bias", frm + "/bias")


def norm(to, frm):
    copy(to + ".weight", frm + "/gamma")
    copy(to + ".bias", frm + "/beta")


def split(prefix, frm, names):
    w, b = ct2[frm + "/weight"], ct2[frm + "/bias"]
    for i, n in enumerate(names):
        hf[f"{prefix}.{n}.weight"] = f32(w[i * d : (i + 1) * d])
        if n != "k_proj":  # Whisper has no key bias; CT2 stores zeros
            hf[f"{prefix}.{n}.bias"] = f32(b[i * d : (i + 1) * d])


def layers(side):
    names = (k.split("/")[1] for k in ct2 if k.startswith(f"{side}/layer_"))
    return sorted({int(n[6:]) for n in names if n[6:].isdigit()})


E, D = "model.encoder", "model.decoder"
linear(f"{E}.conv1", "encoder/conv1")
linear(f"{E}.conv2", "encoder/conv2")
copy(f"{E}.embed_positions.weight", "encoder/position_encodings/encodings")


def self_attention(p, c):
    split(f"{p}.self_attn", f"{c}/self_attention/linear_0", ["q_proj", "k_proj", "v_proj"])
    linear(f"{p}.self_attn.out_proj", f"{c}/self_attention/linear_1")
    norm(f"{p}.self_attn_layer_norm", f"{c}/self_attention/layer_norm")


def ffn(p, c):
    linear(f"{p}.fc1", f"{c}/ffn/linear_0")
    linear(f"{p}.fc2", f"{c}/ffn/linear_1")
    norm(f"{p}.final_layer_norm", f"{c}/ffn/layer_norm")


for n in layers("encoder"):
    p, c = f"{E}.layers.{n}", f"encoder/layer_{n}"
    self_attention(p, c)
    ffn(p, c)
norm(f"{E}.layer_norm", "encoder/layer_norm")
copy(f"{D}.embed_tokens.weight", "decoder/embeddings/weight")
copy(f"{D}.embed_positions.weight", "decoder/position_encodings/encodings")
for n in layers("decoder"):
    p, c = f"{D}.layers.{n}", f"decoder/layer_{n}"
    self_attention(p, c)
    linear(f"{p}.encoder_attn.q_proj", f"{c}/attention/linear_0")
    split(f"{p}.encoder_attn", f"{c}/attention/linear_1", ["k_proj", "v_proj"])
    linear(f"{p}.encoder_attn.out_proj", f"{c}/attention/linear_2")
    norm(f"{p}.encoder_attn_layer_norm", f"{c}/attention/layer_norm")
    ffn(p, c)
norm(f"{D}.layer_norm", "decoder/layer_norm")
save_file(hf, os.path.join(dst, "model.safetensors"), metadata={"format": "pt"})

# One token a line; empty lines are tokens too (base's id 50256).
vocab = open(os.path.join(src, "vocabulary.txt"), encoding="utf-8").read().split("\n")
if vocab[-1] == "":
    vocab.pop()
vocab_size = ct2["decoder/embeddings/weight"].shape[0]
if len(vocab) != vocab_size:
    sys.exit(f"vocabulary.txt has {len(vocab)} tokens, the embedding {vocab_size} rows")
ids = {t: i for i, t in enumerate(vocab)}
eot, sot, no_ts = ids["<|endoftext|>"], ids["<|startoftranscript|>"], ids["<|notimestamps|>"]
multilingual = vocab_size >= 51865  # openai's rule; tiny.en lists language tokens too
options = json.load(open(os.path.join(src, "config.json")))
ffn = ct2["encoder/layer_0/ffn/linear_0/weight"].shape[0]


def dump(name, value):
    json.dump(value, open(os.path.join(dst, name), "w", encoding="utf-8"), indent=2, ensure_ascii=False)


dump("config.json", {
    "architectures": ["WhisperForConditionalGeneration"],
    "model_type": "whisper",
    "vocab_size": vocab_size,
    "num_mel_bins": ct2["encoder/conv1/weight"].shape[1],
    "d_model": d,
    "encoder_layers": len(layers("encoder")),
    "decoder_layers": len(layers("decoder")),
    "encoder_attention_heads": int(ct2["encoder/num_heads"]),
    "decoder_attention_heads": int(ct2["decoder/num_heads"]),
    "encoder_ffn_dim": ffn,
    "decoder_ffn_dim": ffn,
    "max_source_positions": ct2["encoder/position_encodings/encodings"].shape[0],
    "max_target_positions": ct2["decoder/position_encodings/encodings"].shape[0],
    "activation_function": "gelu",
    "scale_embedding": False,
    "tie_word_embeddings": True,
    "bos_token_id": eot,
    "eos_token_id": eot,
    "pad_token_id": eot,
    "decoder_start_token_id": sot,
    "torch_dtype": "float32",
})
generation = {
    "decoder_start_token_id": sot,
    "bos_token_id": eot,
    "eos_token_id": eot,
    "pad_token_id": eot,
    "no_timestamps_token_id": no_ts,
    "max_initial_timestamp_index": 50,  # openai's 1 s, in 0.02 s steps
    "max_length": ct2["decoder/position_encodings/encodings"].shape[0],
    # CT2's lists are faster-whisper's suppress_tokens=[-1] and suppress_blank.
    "suppress_tokens": options["suppress_ids"],
    "begin_suppress_tokens": options["suppress_ids_begin"],
    "alignment_heads": options.get("alignment_heads", []),
    "is_multilingual": multilingual,
    "return_timestamps": False,
}
if multilingual:
    generation["lang_to_id"] = {vocab[i]: i for i in options["lang_ids"]}
    generation["task_to_id"] = {"transcribe": ids["<|transcribe|>"], "translate": ids["<|translate|>"]}
dump("generation_config.json", generation)
dump("preprocessor_config.json", {
    "feature_extractor_type": "WhisperFeatureExtractor",
    "processor_class": "WhisperProcessor",
    "feature_size": ct2["encoder/conv1/weight"].shape[1],
    "sampling_rate": 16000,
    "hop_length": 160,
    "n_fft": 400,
    "chunk_length": 30,
    "n_samples": 480000,
    "nb_max_frames": 3000,
    "padding_side": "right",
    "padding_value": 0.0,
    "return_attention_mask": False,
})
# The package's tokenizer.json lacks the timestamp tokens; Hugging Face's lists them.
tok = json.load(open(os.path.join(src, "tokenizer.json"), encoding="utf-8"))
known = {t["id"] for t in tok["added_tokens"]}
tok["added_tokens"] += [{"id": i, "content": vocab[i], "single_word": False, "lstrip": False, "rstrip": False,
                         "normalized": False, "special": False} for i in range(no_ts + 1, vocab_size) if i not in known]
dump("tokenizer.json", tok)
dump("tokenizer_config.json", {
    "tokenizer_class": "WhisperTokenizer",
    "bos_token": "<|endoftext|>",
    "eos_token": "<|endoftext|>",
    "unk_token": "<|endoftext|>",
    "pad_token": "<|endoftext|>",
    "model_max_length": 1024,
    "add_prefix_space": False,
    "errors": "replace",
    "clean_up_tokenization_spaces": True,
})
print(f"{os.path.basename(src)}: {len(hf)} tensors converted", file=sys.stderr)
PY

# 2. ONNX as transformers.js loads it (an encoder and a decoder whose first
#    and later steps are one graph with an If), then int8 copies (its q8:
#    dynamic quantization, MatMuls with constant weights only, as its own
#    quantize script does; the If's branches are quantized too).
py - "$work/hf" "$work/onnx" "$out" <<'PY'
import os, shutil, sys, time

from onnxruntime.quantization import QuantType, quantize_dynamic
from optimum.exporters.onnx import main_export

hf, onnx, out = sys.argv[1:]
started = time.time()
main_export(hf, output=onnx, task="automatic-speech-recognition-with-past", device="cpu")
for name in ["config.json", "generation_config.json", "preprocessor_config.json", "tokenizer.json",
             "tokenizer_config.json", "special_tokens_map.json"]:
    shutil.copy(os.path.join(onnx, name), os.path.join(out, name))
for name in ["encoder_model", "decoder_model_merged"]:
    shutil.copy(os.path.join(onnx, name + ".onnx"), os.path.join(out, "onnx", name + ".onnx"))
    quantize_dynamic(os.path.join(onnx, name + ".onnx"), os.path.join(out, "onnx", name + "_quantized.onnx"),
                     weight_type=QuantType.QInt8, per_channel=False, reduce_range=False,
                     extra_options={"EnableSubgraph": True, "MatMulConstBOnly": True})
print(f"exported and quantized in {time.time() - started:.0f} s", file=sys.stderr)
PY
rm -rf "$work"
rmdir "$cache/work" 2>/dev/null || true
echo "$stamp" > "$out/.done"
echo "$out"
