#!/bin/bash
# One lease call: the paper profile of every table on the lent GPU, within a time budget; results to $OUT.
# usage: bash .device/run.sh COMMIT BUDGET_S WORKERS TABLE...
set -u
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 EMNIST_ROOT=$PWD/.device/data EMNIST_CACHE=/tmp/emnist-cache RUNS_DIR=$PWD/runs \
       GIT_COMMIT=$1 CUBLAS_WORKSPACE_CONFIG=:4096:8
BUDGET=$2; WORKERS=$3; shift 3
mkdir -p runs
# runs carried back from an earlier call (metadata only: finished runs are skipped, not retrained)
[ -f .device/runs-meta.tgz ] && tar xzf .device/runs-meta.tgz
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import sys, torch; print(sys.version.split()[0], torch.__version__, torch.cuda.get_device_name(0))"
(while sleep 20; do nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader; done) > $OUT/gpu.log 2>&1 &
start=$(date +%s)
timeout -s INT -k 20 "$BUDGET" python3 -m training reproduce "$@" --in-order --profile paper --workers "$WORKERS" --threads 1 \
    --no-plots --out /tmp/paper > $OUT/reproduce.log 2>&1
echo "reproduce exit $? after $(( $(date +%s) - start )) s"
pkill -9 -f "training reproduce"; pkill -9 -f multiprocessing; sleep 2
ls runs | wc -l; ls runs/*/metrics.json | wc -l
tar czf $OUT/runs-meta.tgz --exclude='*.pt' --exclude='*.tmp' runs
# weights the export needs: Table 8's runs and every small model (LeNet-5, plain CNN)
{ for id in $(python3 -m training reproduce table8 --profile paper --plan | awk '{print $2}'); do
    ls runs/$id/best.pt 2>/dev/null; done; find runs -name best.pt -size -2M; } | sort -u > /tmp/weights.txt
cat /tmp/weights.txt
tar cf - -T /tmp/weights.txt | split -b 15M - $OUT/weights.tar.
ls -la $OUT
