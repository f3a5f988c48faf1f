#!/usr/bin/env bash
# Shared launcher for slurm/train_*.sbatch. Two roles:
#   bash slurm/launch.sh [papermill args: -p key value ...]   (in the batch shell: one torchrun per node via srun)
#   bash slurm/launch.sh --rank-worker                        (started by torchrun once per rank: runs papermill)
# Preemption: Slurm sends USR1 to the batch shell (#SBATCH --signal=B:USR1@120, or scancel --signal=USR1 --batch);
# we forward it to every training process on this node and touch a stop file that ranks on other nodes poll; the
# trainer checkpoints and exits, then we `scontrol requeue` this job, which resumes from that checkpoint.
set -uo pipefail

REPO=${LABKIT_REPO:-${SLURM_SUBMIT_DIR:-$(pwd)}}
cd "$REPO"
JOB_ID=${SLURM_JOB_ID:?launch.sh must run inside a Slurm job (sbatch)}
RESTART=${SLURM_RESTART_COUNT:-0}
JOB_DIR=${LABKIT_JOB_DIR:-$REPO/runs/slurm/$JOB_ID}
NOTEBOOK=${LABKIT_NOTEBOOK:-notebooks/05_training.ipynb}
export LABKIT_JOB_DIR=$JOB_DIR LABKIT_REPO=$REPO
export LABKIT_TRAIN_PID_DIR=$JOB_DIR/pids LABKIT_STOP_FILE=$JOB_DIR/STOP
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false PYTHONPATH=$REPO${PYTHONPATH:+:$PYTHONPATH}

log() { echo "[launch $(date -u +%FT%TZ) job=$JOB_ID restart=$RESTART] $*" | tee -a "$JOB_DIR/job.log"; }

if [ "${1:-}" = "--rank-worker" ]; then
  # One rank (torchrun sets RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT); the kernel inherits them.
  rank=${RANK:-0}
  suffix=""; [ "$rank" != 0 ] && suffix=".rank$rank"
  out="$JOB_DIR/05_training.restart$RESTART$suffix.ipynb"
  mapfile -d '' ARGS < "$JOB_DIR/papermill.args"
  exec python3 -m papermill "$NOTEBOOK" "$out" --cwd notebooks --log-output \
    -p output_dir "${LABKIT_OUTPUT_DIR:-$REPO/runs/train/slurm_$JOB_ID}" -p stop_file "$LABKIT_STOP_FILE" \
    "${ARGS[@]}" >> "$JOB_DIR/train.rank$rank.log" 2>&1
fi

mkdir -p "$JOB_DIR" "$LABKIT_TRAIN_PID_DIR"
rm -f "$LABKIT_STOP_FILE" "$LABKIT_TRAIN_PID_DIR"/*.pid
printf '%s\0' "$@" > "$JOB_DIR/papermill.args"

NNODES=${SLURM_JOB_NUM_NODES:-1}
NPROC=${LABKIT_GPUS_PER_NODE:-1}
MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
MASTER_PORT=${LABKIT_MASTER_PORT:-$((20000 + JOB_ID % 20000))}
log "start: SLURM_RESTART_COUNT=$RESTART nodes=$NNODES procs/node=$NPROC rendezvous=$MASTER_ADDR:$MASTER_PORT" \
    "notebook=$NOTEBOOK args=$*"

PREEMPTED=0
forward() {  # $1: signal name
  log "got SIG$1: stopping training at the next step (checkpoint first)"
  touch "$LABKIT_STOP_FILE"
  for f in "$LABKIT_TRAIN_PID_DIR"/*.pid; do
    [ -f "$f" ] && kill -s "$1" "$(cat "$f")" 2>/dev/null && log "forwarded SIG$1 to pid $(cat "$f") ($(basename "$f"))"
  done
}
trap 'PREEMPTED=1; forward USR1' USR1
trap 'forward TERM' TERM

srun --ntasks="$NNODES" --ntasks-per-node=1 --kill-on-bad-exit=1 \
  python3 -m torch.distributed.run --nnodes="$NNODES" --nproc_per_node="$NPROC" \
    --rdzv_backend=c10d --rdzv_endpoint="$MASTER_ADDR:$MASTER_PORT" --rdzv_id="$JOB_ID" \
    --no-python bash "$REPO/slurm/launch.sh" --rank-worker &
child=$!
while true; do  # `wait` returns early when a trapped signal arrives; keep waiting for the training to finish
  wait "$child"; rc=$?
  kill -0 "$child" 2>/dev/null || break
done

if [ "$PREEMPTED" = 1 ]; then
  trap - USR1 TERM
  log "training stopped after a checkpoint (rc=$rc); requeueing job $JOB_ID"
  scontrol requeue "$JOB_ID"
  exit 0
fi
log "finished with rc=$rc"
exit "$rc"
