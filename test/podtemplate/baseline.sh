#!/usr/bin/env bash
# Writes test/podtemplate/baseline from a release: checks the release's
# commit out into a temporary worktree, runs this package's
# TestWriteBaseline there (the harness file is copied in, so the release's
# own function renders its own examples), and removes the worktree.
#   test/podtemplate/baseline.sh <commit> <release>
# e.g. test/podtemplate/baseline.sh ad7d7a3 v0.1.0
set -euo pipefail
commit=${1:?usage: baseline.sh COMMIT RELEASE}
release=${2:?usage: baseline.sh COMMIT RELEASE}
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
cleanup() { git -C "$root" worktree remove --force "$work/tree" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
git -C "$root" worktree add --detach "$work/tree" "$commit" >/dev/null
mkdir -p "$work/tree/test/podtemplate"
cp "$root/test/podtemplate/podtemplate_test.go" "$work/tree/test/podtemplate/"
rm -rf "$root/test/podtemplate/baseline"
(cd "$work/tree" && BASELINE_RELEASE=$release go test ./test/podtemplate -count=1 -run '^TestWriteBaseline$' -args -write-baseline="$root/test/podtemplate/baseline")
echo "baseline of $release ($commit) written to test/podtemplate/baseline"
