#!/usr/bin/env bash
# Usage: test/validate/prepare.sh OUT_DIR
#
# Writes the offline schema set for `crossplane beta validate` into OUT_DIR
# (cache/, kubernetes/, third-party/) with the generator in schemas/. Every
# input is pinned in schemas/main.go, so OUT_DIR is keyed on the generator's
# sources: when OUT_DIR/.stamp matches them, nothing is done.
set -euo pipefail

if [[ $# -ne 1 || -z $1 ]]; then
	echo "usage: $0 OUT_DIR" >&2
	exit 2
fi
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mkdir -p "$1"
out=$(cd "$1" && pwd)

key=$(cat "$here/schemas/main.go" "$here/schemas/go.mod" "$here/schemas/go.sum" | sha256sum | cut -d' ' -f1)
complete() {
	[[ -f $out/.stamp && $(<"$out/.stamp") == "$key" ]] &&
		compgen -G "$out/cache/xpkg.crossplane.io/crossplane/crossplane@*/package.yaml" >/dev/null &&
		compgen -G "$out/kubernetes/*.yaml" >/dev/null &&
		compgen -G "$out/third-party/*.yaml" >/dev/null
}
complete && exit 0

# One writer at a time (parallel make); the winner's work satisfies the rest.
if command -v flock >/dev/null; then
	exec 9>"$out/.lock"
	flock 9
	complete && exit 0
fi

rm -f "$out/.stamp"
# -mod=readonly: never edit the committed go.mod/go.sum; GOWORK=off: ignore
# any workspace around the repository.
(cd "$here/schemas" && GOWORK=off GOFLAGS="-mod=readonly -buildvcs=false" go run . -out "$out")
echo "$key" >"$out/.stamp"
