#!/usr/bin/env bash
# TIPC certification on generated lite data, CPU: every bit length, or the ones given.
# Usage: scripts/tipc.sh [MODE] [BIT ...]   (MODE default lite_train_lite_infer; BITs default 16 32 48 64)
# Results: test_tipc/output/hashnet_<BIT>/<MODE>/results_python.log; exit code non-zero if any step failed.
set -uo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-lite_train_lite_infer}
shift || true
BITS=${*:-16 32 48 64}
status=0
for BIT in $BITS; do
  CONFIG=test_tipc/configs/hashnet_${BIT}/train_infer_python.txt
  bash test_tipc/prepare.sh "$CONFIG" "$MODE" || { status=1; continue; }
  bash test_tipc/test_train_inference_python.sh "$CONFIG" "$MODE" || status=1
done
exit $status
