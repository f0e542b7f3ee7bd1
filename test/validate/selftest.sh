#!/usr/bin/env bash
# Usage: test/validate/selftest.sh OUT_DIR
# Checks the harness itself on testdata/: the valid stream and our XR must
# pass, every testdata/invalid-*.yaml must fail.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:?usage: $0 OUT_DIR}
xrds=$root/apis/kalypsoprojects/definition.yaml
bash "$here/prepare.sh" "$out"
for f in valid xr; do
	SKIP_SUCCESS=1 bash "$here/validate.sh" "$out" "$xrds" <"$here/testdata/$f.yaml" || { echo "selftest: $f.yaml should pass" >&2; exit 1; }
done
for f in "$here"/testdata/invalid-*.yaml; do
	if bash "$here/validate.sh" "$out" "$xrds" <"$f" >/dev/null 2>&1; then
		echo "selftest: $(basename "$f") should fail" >&2
		exit 1
	fi
done
echo "selftest: ok"
