#!/bin/bash
# One call on a lent GPU machine: (optionally) the concurrency benchmark, then the paper profile of the named tables
# within a time budget; run records (no weights), logs and a GPU utilisation trace go to $OUT.
# usage (from the repo root there): bash scripts/gpu_lease.sh COMMIT BUDGET_S WORKERS COMPILE(0|1|auto) BENCH(0|1) TABLE...
# COMPILE=auto takes whichever variant the benchmark (BENCH=1) measured faster.
# Data: the pool pack carried as .device/data (python -m training data --pack .device/data). A warm machine keeps
# runs/ between calls, so a second call resumes the runs the first one left unfinished.
set -u
export PYTHONUNBUFFERED=1 EMNIST_ROOT=$PWD/.device/data EMNIST_CACHE=/tmp/emnist-cache RUNS_DIR=$PWD/runs \
       GIT_COMMIT=$1 CUBLAS_WORKSPACE_CONFIG=:4096:8
BUDGET=$2; WORKERS=$3; COMPILE=$4; BENCH=$5; shift 5
mkdir -p runs
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import sys, torch; print(sys.version.split()[0], torch.__version__, torch.cuda.get_device_name(0))"
start=$(date +%s)
if [ "$BENCH" = 1 ]; then
  python3 benchmarks/gpu_throughput.py --workers "$WORKERS" --variants eager compile --seconds 15 --warmup 45 \
      2>&1 | grep -v Warning | tee $OUT/gpu_throughput.txt
fi
if [ "$COMPILE" = auto ]; then
  COMPILE=$(awk '$1=="eager"{e=$3} $1=="compile"{c=$3} END{gsub(",","",e); gsub(",","",c); print (c+0 > e+0) ? 1 : 0}' \
            $OUT/gpu_throughput.txt 2>/dev/null || echo 0)
  echo "compile: $COMPILE"
fi
(while sleep 10; do nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader; done) > $OUT/gpu.log 2>&1 &
left=$(( BUDGET - ($(date +%s) - start) ))
flag=""; [ "$COMPILE" = 1 ] && flag="--compile"
timeout -s INT -k 20 "$left" python3 -c "import sys; from training.reproduce import main; sys.exit(main(sys.argv[1:]))" \
    "$@" --in-order --profile paper --device cuda --workers "$WORKERS" --threads 1 $flag --no-plots --out /tmp/paper \
    > $OUT/reproduce.log 2>&1
echo "reproduce exit $? after $(( $(date +%s) - start )) s"
pkill -9 -f "training.reproduce"; pkill -9 -f multiprocessing; sleep 2
echo "runs: $(ls runs | wc -l), finished: $(ls runs/*/metrics.json 2>/dev/null | wc -l)"
tar czf $OUT/runs-meta.tgz --exclude='*.pt' --exclude='*.tmp' runs
python3 - <<'PY'
# Images per second of this call's finished epochs, all runs together, from their histories.
import json, pathlib
rows = [json.loads(p.read_text()) for p in pathlib.Path("runs").glob("*/history.json")]
print(f"epochs recorded: {sum(len(r) for r in rows)}")
PY
tail -3 $OUT/gpu.log
