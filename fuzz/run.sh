#!/usr/bin/env bash
# Runs each fuzz target (or the ones named) for SECONDS (default 60) with
# libFuzzer through cargo-fuzz, which needs a nightly toolchain:
#
#   fuzz/run.sh 600                      # every target, 10 minutes each
#   fuzz/run.sh 60 retry_after jwt_claims
#
# New inputs go to fuzz/corpus/<target> (not committed); the committed seeds
# in fuzz/seeds/<target> are read too. A crash is saved under
# fuzz/artifacts/<target>; turn it into a regression test in the crate
# (`src/__fuzz.rs` runs the same entry points in `cargo test`).
# The last lines of each run (executions, coverage) go to fuzz/logs/<target>.log.
set -euo pipefail
cd "$(dirname "$0")"

seconds="${1:-60}"
shift || true
if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.toml | grep -v '^cxone-auth-fuzz$')
fi

toolchain="${FUZZ_TOOLCHAIN:-nightly}"
if ! cargo "+$toolchain" fuzz --version >/dev/null 2>&1; then
  echo "needs cargo-fuzz (cargo install cargo-fuzz) and the $toolchain toolchain" >&2
  exit 1
fi

mkdir -p logs
status=0
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target" "seeds/$target"
  echo "fuzzing $target for ${seconds}s"
  if ! cargo "+$toolchain" fuzz run "$target" "corpus/$target" "seeds/$target" -- \
      -max_total_time="$seconds" -print_final_stats=1 >"logs/$target.log" 2>&1; then
    echo "$target FAILED: see fuzz/logs/$target.log and fuzz/artifacts/$target" >&2
    status=1
  fi
  grep -E '^(#[0-9]+.*DONE|Done [0-9]+ runs|stat::number_of_executed_units|stat::peak_rss_mb)' "logs/$target.log" || tail -5 "logs/$target.log"
done
exit "$status"
