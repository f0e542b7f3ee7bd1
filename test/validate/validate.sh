#!/usr/bin/env bash
# Usage: test/validate/validate.sh OUT_DIR [XRD_PATHS] < resources.yaml
#
# Validates every object of the YAML stream on stdin (e.g. `crossplane render
# -x` output) with `crossplane beta validate`, fully offline, against:
#   XRD_PATHS          comma-separated XRD/CRD files or directories (optional)
#   OUT_DIR/kubernetes core Kubernetes kinds     } written by prepare.sh
#   OUT_DIR/third-party upstream CRDs            }
#   OUT_DIR/cache      Crossplane's own CRDs     }
# Fails on any validation error, on any object without a schema and on an
# empty stream. CROSSPLANE overrides the CLI (default .bin/crossplane-v2.2.1,
# relative to the repository root); SKIP_SUCCESS=1 prints only problems.
set -euo pipefail

if [[ $# -lt 1 || $# -gt 2 || -z $1 ]]; then
	echo "usage: $0 OUT_DIR [XRD_PATHS] < resources.yaml" >&2
	exit 2
fi
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
out=$(cd "$1" && pwd)
xrds=${2:-}
crossplane=${CROSSPLANE:-.bin/crossplane-v2.2.1}
[[ $crossplane == /* ]] || crossplane=$root/$crossplane
[[ -x $crossplane ]] || { echo "validate: no crossplane CLI at $crossplane" >&2; exit 1; }

# The Crossplane image whose CRDs prepare.sh cached. Naming it explicitly keeps
# the CLI from deriving it from its own version (and from downloading it).
pkgs=("$out"/cache/xpkg.crossplane.io/crossplane/crossplane@*/package.yaml)
if [[ ${#pkgs[@]} -ne 1 || ! -f ${pkgs[0]} || ! -d $out/kubernetes || ! -d $out/third-party ]]; then
	echo "validate: $out is not a complete schema set: run test/validate/prepare.sh $1" >&2
	exit 1
fi
version=$(basename "$(dirname "${pkgs[0]}")")
version=${version#crossplane@}

# Package objects among the extensions make the CLI download their images.
if [[ -n $xrds ]]; then
	IFS=, read -ra sources <<<"$xrds"
	for s in "${sources[@]}"; do
		if [[ ! -e $s ]]; then
			echo "validate: no such XRD path: $s" >&2
			exit 1
		fi
		if grep -rlE --include='*.yaml' --include='*.yml' '^kind: *(Configuration|Function|Provider) *$' "$s" >&2; then
			echo "validate: the files above hold package objects (Configuration/Function/Provider): the CLI would download them; pass only XRDs/CRDs" >&2
			exit 1
		fi
	done
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/resources.yaml"
if ! grep -qE '^kind:' "$tmp/resources.yaml"; then
	echo "validate: no objects on stdin" >&2
	exit 1
fi

flags=(--cache-dir "$out/cache" --crossplane-image "xpkg.crossplane.io/crossplane/crossplane:$version" --error-on-missing-schemas)
[[ ${SKIP_SUCCESS:-} == 1 ]] && flags+=(--skip-success-results)

# An unusable proxy: should the CLI still try the network, it fails at once
# instead of waiting on a connection.
HTTPS_PROXY=http://127.0.0.1:9 HTTP_PROXY=http://127.0.0.1:9 NO_PROXY= https_proxy= http_proxy= no_proxy= \
	"$crossplane" beta validate "${flags[@]}" "${xrds:+$xrds,}$out/kubernetes,$out/third-party" - <"$tmp/resources.yaml"
