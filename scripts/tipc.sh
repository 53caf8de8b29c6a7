#!/bin/sh
# TIPC certification on generated lite data, CPU: every bit length, or the ones given.
# Usage: sh scripts/tipc.sh [MODE] [BIT ...]   (MODE default lite_train_lite_infer; BITs default 16 32 48 64)
# Results: test_tipc/output/hashnet_<BIT>/<MODE>/results_python.log; exit code non-zero if any step failed.
# The TIPC scripts themselves need bash (installed on every Debian/Ubuntu); DRY_RUN=1 prints the commands.
set -u
cd "$(dirname "$0")/.."
MODE=${1:-lite_train_lite_infer}
if [ $# -ge 1 ]; then shift; fi
BITS=${*:-16 32 48 64}
. scripts/launcher.sh
status=0
for BIT in $BITS; do
  CONFIG=test_tipc/configs/hashnet_${BIT}/train_infer_python.txt
  if [ ! -f "$CONFIG" ]; then
    echo "error: no TIPC config for ${BIT} bits: $CONFIG" >&2
    status=1
    continue
  fi
  run bash test_tipc/prepare.sh "$CONFIG" "$MODE" || { status=1; continue; }
  run bash test_tipc/test_train_inference_python.sh "$CONFIG" "$MODE" || status=1
done
exit $status
