#!/usr/bin/env bash
# The GPU checks in one command, for a CUDA machine that may be lent for minutes only:
#   bash benchmarks/gpu_checks.sh            # results and logs under $OUT (default gpu-results/)
#
# 1. benchmarks.train_gpu for each model in MODELS (default gpt2-124m and gpt2-350m): MFU, tokens/s and
#    the loader's data-wait fraction, bf16 + torch.compile, on the shard set in SHARDS.
# 2. The trainer under torchrun with FSDP2 (one process per GPU there is): steps with a checkpoint,
#    then a second launch that resumes from it, the path a multi-GPU job takes.
# SHARDS defaults to .gpu/shards, built beforehand from real web text where ../shared/data exists:
#   python -c "from pathlib import Path; import benchmarks.train_gpu as b; b.build_shards(Path('.gpu/shards'), 4_200_000)"
# A machine that cannot install packages gets them as wheels in WHEELS (.whl/; installed to /tmp/site).
# tests/training/test_gpu_checks_script.py runs the whole script on CPU with the tiny model.
# Each check has its own time limit, so one that hangs or fails leaves the others their results; the
# script exits 1 after naming the checks that failed.
set -uo pipefail
OUT=${OUT:-gpu-results}
PY=${PYTHON:-python3}
SHARDS=${SHARDS:-.gpu/shards}
MODELS=${MODELS-gpt2-124m gpt2-350m}  # empty: the FSDP check alone
FSDP_CONFIG=${FSDP_CONFIG:-training/configs/gpt2_124m.yaml}
FSDP_STEPS=${FSDP_STEPS:-20}
LIMIT=${LIMIT:-240}
RUN_DIR=${RUN_DIR:-/tmp/gpu-fsdp}  # the FSDP run's checkpoints: kept out of $OUT, which travels back
WHEELS=${WHEELS:-.whl}
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
mkdir -p "$OUT"
[ -f "$SHARDS/manifest.json" ] || { echo "no shard set at $SHARDS (see the header)"; exit 1; }

if compgen -G "$WHEELS/*.whl" >/dev/null; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$WHEELS"/*.whl \
        || exit 1
    export PYTHONPATH=/tmp/site:$PWD
fi
{ nvidia-smi; $PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"; nproc; } \
    >"$OUT/machine.txt" 2>&1

failed=()
check() {  # $1: the check's name (its log is $OUT/$1.log); the rest: its command
    local name=$1
    shift
    timeout "$LIMIT" "$@" 2>&1 | tee "$OUT/$name.log" || failed+=("$name")
}

for model in $MODELS; do
    check "train_$model" $PY -m benchmarks.train_gpu --config "$model" --shards "$SHARDS"
done

fsdp() {  # $1: the log's name; further arguments: config overrides
    local name=$1
    shift
    check "$name" $PY -m torch.distributed.run --standalone --nproc-per-node "${NPROC:-1}" \
        -m training.trainer.train "$FSDP_CONFIG" --set parallel=fsdp --set "data.train=[{path: $SHARDS}]" \
        --set data.batch_size=16 --set optim.grad_accum=2 --set optim.warmup_steps=5 --set log_every=5 \
        --set eval_every=10 --set eval_batches=2 --set checkpoint_every=10 --set out_dir="$RUN_DIR" \
        --set progress=false "$@"
}
rm -rf "$RUN_DIR"
fsdp fsdp_first --set steps="$FSDP_STEPS" --fresh
fsdp fsdp_resume --set steps=$((FSDP_STEPS + 10)) --set compile=off
cp "$RUN_DIR/metrics.jsonl" "$OUT/fsdp_metrics.jsonl" 2>/dev/null
if [ ${#failed[@]} -gt 0 ]; then
    echo "failed: ${failed[*]} (their logs are in $OUT)" >&2
    exit 1
fi
