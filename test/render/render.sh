#!/usr/bin/env bash
# Renders every example with the pinned crossplane CLI against the function
# started here on loopback, and stops it again.
#   render.sh print    print each case
#   render.sh golden   rewrite test/render/golden
#   render.sh case XR STAGE-DIR   print one case
#   render.sh check    diff against test/render/golden and, with VALIDATE_DIR
#                      (prepared by test/validate/prepare.sh), validate every
#                      rendered object against its schema
# Cases: every XR file examples/<dir>/*.yaml is rendered as "initial" (nothing
# observed yet) and once per stage folder examples/<dir>/stages/<xr>/<stage>/
# holding observed and/or required resources, each a .yaml file or a folder of
# them (observed.yaml or observed/, required.yaml or required/; those in
# stages/<xr>/initial are used for the initial case). Shared fixtures live in
# examples/<dir>/stages/fixtures and are linked from the stage folders. A case with an expect-error file must fail
# with that message. A stage folder holding xr.yaml renders it instead of the
# example: the example as a user then edited it (a refused change).
set -euo pipefail
mode=${1:?usage: render.sh print|golden|check}
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
: "${CROSSPLANE:=.bin/crossplane}"
: "${FUNCTION:=.bin/function}"
: "${RENDER_PORT:=19443}"
golden=test/render/golden
work=$(mktemp -d)
fnpid=""
cleanup() {
  if [ -n "$fnpid" ]; then kill "$fnpid" 2>/dev/null || true; wait "$fnpid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# The OpenAPI documents the API server would serve for the CRDs a stage
# holds, for --required-schemas (see test/render/crdopenapi).
go build -o "$work/crdopenapi" ./test/render/crdopenapi

"$FUNCTION" --insecure --address="127.0.0.1:$RENDER_PORT" --metrics-address=127.0.0.1:0 >"$work/function.log" 2>&1 &
fnpid=$!
for _ in $(seq 50); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$RENDER_PORT") 2>/dev/null; then break; fi
  kill -0 "$fnpid" 2>/dev/null || { cat "$work/function.log" >&2; exit 1; }
  sleep 0.1
done

composition_for() { # XR file -> its Composition, from the XR's kind
  local kind plural
  kind=$(sed -n 's/^kind: *//p' "$1" | head -1)
  plural="$(echo "$kind" | tr '[:upper:]' '[:lower:]')s"
  case "$kind" in
    X*) echo "apis/claims/$plural/composition.yaml" ;;
    *) echo "apis/$plural/composition.yaml" ;;
  esac
}

render() { # xr stage-dir extra-flags...
  local xr=$1 dir=$2; shift 2
  [ -f "$dir/xr.yaml" ] && xr=$dir/xr.yaml
  local args=(render --timeout=20s -a "render.crossplane.io/runtime-development-target=127.0.0.1:$RENDER_PORT" "$@")
  local f
  for f in observed.yaml observed; do [ -e "$dir/$f" ] && args+=(-o "$dir/$f"); done
  local schemas
  schemas=$(mktemp -d "$work/schemas.XXXXXX")
  for f in required.yaml required; do
    if [ -e "$dir/$f" ]; then
      args+=(-e "$dir/$f")
      "$work/crdopenapi" "$schemas" "$dir/$f"
    fi
  done
  compgen -G "$schemas/*.json" >/dev/null && args+=(-s "$schemas")
  "$CROSSPLANE" "${args[@]}" "$xr" "$(composition_for "$xr")" examples/functions.yaml
}

if [ "$mode" = case ]; then
  render "${2:?XR file}" "${3:?stage folder}" -r -x
  exit
fi

cases=0 failed=0
[ "$mode" = golden ] && rm -rf "$golden"
for xr in $(find examples -path '*/stages' -prune -o -name '*.yaml' -print | grep -v '^examples/functions.yaml$' | sort); do
  grep -q '^apiVersion: serving.kalypso.io/' "$xr" || continue
  dir=$(dirname "$xr") base=$(basename "$xr" .yaml)
  stages="initial"
  if [ -d "$dir/stages/$base" ]; then
    stages=$( (echo initial; ls "$dir/stages/$base") | sort -u)
  fi
  for stage in $stages; do
    cases=$((cases + 1))
    sdir="$dir/stages/$base/$stage"
    name="${dir#examples/}/$base/$stage"
    out="$work/out.yaml"
    if [ -f "$sdir/expect-error" ]; then
      if render "$xr" "$sdir" -r -x >"$out" 2>"$work/err"; then
        echo "FAIL $name: expected an error, rendered fine" >&2; failed=$((failed + 1)); continue
      fi
      sed 's/^crossplane: error: //' "$work/err" >"$out"
    elif ! render "$xr" "$sdir" -r -x >"$out" 2>"$work/err"; then
      echo "FAIL $name: $(cat "$work/err")" >&2; failed=$((failed + 1)); continue
    fi
    case "$mode" in
      print) echo "### $name"; cat "$out" ;;
      golden) mkdir -p "$golden/$(dirname "$name")"; cp "$out" "$golden/$name.yaml" ;;
      check)
        if ! diff -u "$golden/$name.yaml" "$out" >"$work/diff" 2>&1; then
          echo "FAIL $name: render differs from its golden (make render-golden rewrites it):" >&2
          head -40 "$work/diff" >&2; failed=$((failed + 1)); continue
        fi
        if [ ! -f "$sdir/expect-error" ] && [ -n "${VALIDATE_DIR:-}" ]; then
          # The two flavours define the same kind names: validate against one.
          xrds=apis/kalypsoprojects,apis/kalypsoapplications,apis/kalypsotritonservers
          case "$xr" in examples/claims/*) xrds=apis/kalypsoprojects,apis/claims ;; esac
          if ! render "$xr" "$sdir" -x | CROSSPLANE=$CROSSPLANE bash test/validate/validate.sh "$VALIDATE_DIR" "$xrds" >"$work/validate" 2>&1; then
            echo "FAIL $name: composed objects do not validate:" >&2; cat "$work/validate" >&2; failed=$((failed + 1)); continue
          fi
        fi
        echo "ok   $name" ;;
      *) echo "unknown mode $mode" >&2; exit 2 ;;
    esac
  done
done
if [ "$mode" = check ]; then
  # The platform's third-party objects validate against their CRDs.
  if [ -n "${VALIDATE_DIR:-}" ]; then
    cases=$((cases + 1))
    if ! bash test/validate/validate.sh "$VALIDATE_DIR" <examples/platform/keda-clustertriggerauthentication.yaml >"$work/validate" 2>&1; then
      echo "FAIL examples/platform/keda-clustertriggerauthentication.yaml does not validate:" >&2; cat "$work/validate" >&2; failed=$((failed + 1))
    else
      echo "ok   platform/keda-clustertriggerauthentication"
    fi
  fi
  # A golden without a case is stale.
  for g in $(cd "$golden" 2>/dev/null && find . -name '*.yaml' | sed 's|^\./||' | sort); do
    n=${g%.yaml} x="examples/${n%/*}.yaml"; stage=${n##*/}
    if [ ! -f "$x" ] || { [ "$stage" != initial ] && [ ! -d "examples/$(dirname "${n%/*}")/stages/$(basename "${n%/*}")/$stage" ]; }; then
      echo "FAIL $g: golden without a case (make render-golden removes it)" >&2; failed=$((failed + 1))
    fi
  done
  echo "render: $((cases - failed)) passed, $failed failed"
fi
[ "$failed" -eq 0 ]
