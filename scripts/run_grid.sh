#!/usr/bin/env bash
# The reproduced grid through the jobs layer: every setting of DESIGN section 1 (controls
# included) at ratios 1 2 3, on each synthetic set named, then the report tables (accuracy,
# AUROC) and the study's conclusions checked on the runs (`synthmed_core claims`).
#
#   bash scripts/run_grid.sh [options] SET [SET ...]
#     --profile P      training recipe (default quick)
#     --arch "A B"     architectures (default resnet18)
#     --init "I J"     initialisations (default scratch)
#     --settings "..." settings (default: all of them)
#     --ratios "1 2 3" synthetic:real ratios for augment / duplicate_control (default 1 2 3)
#     --seeds "0 1 2"  seeds (default 0 1 2)
#     --workers N      worker processes (default: one per GPU, else one on the CPU; on a GPU
#                      several share it, see `python -m synthmed_core bench --concurrent`; on
#                      a CPU, one 1-thread worker per core: resnet18 at 28 px ~8% faster than
#                      one 2-thread worker on a 2-core box, deit_tiny no faster)
#
# Interrupted (machine stopped, Ctrl-C)? Run the same command again: finished runs are skipped,
# runs that were in flight are requeued once their heartbeat is stale and resume from their
# last epoch checkpoint. Uses the python of .venv when present (else python3).
set -euo pipefail
cd "$(dirname "$0")/.."
py=python3; [ -x .venv/bin/python ] && py=.venv/bin/python
profile=quick; archs=resnet18; inits=scratch; ratios="1 2 3"; seeds="0 1 2"; workers=""
settings="base synthetic_base augment synthetic_ft duplicate_control synthetic_pretrain"
sets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) profile=$2; shift 2 ;;
    --arch) archs=$2; shift 2 ;;
    --init) inits=$2; shift 2 ;;
    --settings) settings=$2; shift 2 ;;
    --ratios) ratios=$2; shift 2 ;;
    --seeds) seeds=$2; shift 2 ;;
    --workers) workers="--workers $2"; shift 2 ;;
    -h|--help) sed -n 2,20p "$0"; exit 0 ;;
    -*) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    *) sets+=("$1"); shift ;;
  esac
done
[ ${#sets[@]} -gt 0 ] || { echo "name at least one synthetic set (python -m synthmed_core synth list)" >&2; exit 2; }

t0=$(date +%s)
for set in "${sets[@]}"; do
  # shellcheck disable=SC2086  # word splitting of the lists is intended
  $py -m jobs submit grid --profile "$profile" --arch $archs --init $inits --setting $settings \
      --ratio $ratios --seeds $seeds --synthetic "$set"
done
# shellcheck disable=SC2086
$py -m jobs worker $workers --idle-exit 45 --stale-after 20
echo "[grid] wall time $(( $(date +%s) - t0 )) s"
# shellcheck disable=SC2086
$py -m synthmed_core report --profile "$profile" --arch $archs --synthetic "${sets[@]}"
# shellcheck disable=SC2086
$py -m synthmed_core report --profile "$profile" --arch $archs --synthetic "${sets[@]}" --metric auroc
# shellcheck disable=SC2086
$py -m synthmed_core claims --profile "$profile" --arch $archs
