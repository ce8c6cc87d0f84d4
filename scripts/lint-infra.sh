#!/usr/bin/env bash
# make lint-infra: expand the SAM template to CloudFormation (aws-sam-translator, ASL files inlined), lint the
# result with cfn-lint (zero errors or warnings), and validate the ASL files with asl-validator.
# `--self-test` proves the check can fail: broken copies (a bad Runtime, a state of Type "Taskk") must be caught.
# `--translate TEMPLATE OUT` only writes TEMPLATE's CloudFormation expansion to OUT (what tests/iam.rs checks the
# functions' recorded store accesses against).
# Tools are installed once into ${CPO_CACHE:-$HOME/.cache/cpo}.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cache="${CPO_CACHE:-$HOME/.cache/cpo}"
venv="$cache/venv-infra"
npmdir="$cache/npm-asl"
asl_version="4.0.0"

install_tools() {
  local req="$root/infra/requirements-lint.txt" stamp="$venv/.requirements"
  mkdir -p "$cache"
  # Tests may call this concurrently: one installer at a time.
  exec 9>"$cache/.lint-infra.lock"
  flock 9
  if ! cmp -s "$req" "$stamp" 2>/dev/null; then
    echo "lint-infra: installing aws-sam-translator and cfn-lint into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
    cp "$req" "$stamp"
  fi
  if [ ! -x "$npmdir/node_modules/.bin/asl-validator" ] || ! grep -q "\"version\": \"$asl_version\"" "$npmdir/node_modules/asl-validator/package.json" 2>/dev/null; then
    echo "lint-infra: installing asl-validator@$asl_version into $npmdir" >&2
    mkdir -p "$npmdir"
    (cd "$npmdir" && npm install --silent --no-audit --no-fund "asl-validator@$asl_version" >/dev/null)
  fi
}

# lint TEMPLATE_DIR: the directory holding template.yaml and statemachine/*.asl.json. Prints findings.
lint() {
  local dir="$1" out rc=0
  out="$(mktemp -d)"
  if ! "$venv/bin/python" "$root/infra/scripts/translate.py" "$dir/template.yaml" >"$out/template.cfn.json"; then
    echo "lint-infra: SAM transform failed for $dir/template.yaml" >&2
    rc=1
  else
    # cfn-lint's exit code is a bit mask: 2 error, 4 warning, 8 informational. Errors and warnings fail.
    local lint_rc=0
    "$venv/bin/cfn-lint" --format parseable "$out/template.cfn.json" || lint_rc=$?
    if (( lint_rc & 6 )); then rc=1; fi
  fi
  for f in "$dir"/statemachine/*.asl.json; do
    "$npmdir/node_modules/.bin/asl-validator" --silent --json-path "$f" || { echo "lint-infra: $f is not valid ASL" >&2; rc=1; }
  done
  rm -rf "$out"
  return $rc
}

self_test() {
  local tmp
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' RETURN
  cp -r "$root/infra" "$tmp/runtime"
  sed -i 's/Runtime: provided.al2023/Runtime: provided.al2099/' "$tmp/runtime/template.yaml"
  if lint "$tmp/runtime" >/dev/null 2>&1; then echo "lint-infra self-test: a bad Runtime was NOT caught" >&2; return 1; fi
  cp -r "$root/infra" "$tmp/taskk"
  sed -i '0,/"Type": "Task"/s//"Type": "Taskk"/' "$tmp/taskk/statemachine/campaign.asl.json"
  if lint "$tmp/taskk" >/dev/null 2>&1; then echo "lint-infra self-test: a state of Type Taskk was NOT caught" >&2; return 1; fi
  cp -r "$root/infra" "$tmp/policy"
  sed -i 's/Action: states:StartExecution/Action: states:StartExecutionn/' "$tmp/policy/template.yaml"
  if lint "$tmp/policy" >/dev/null 2>&1; then echo "lint-infra self-test: a misspelt IAM action was NOT caught" >&2; return 1; fi
  echo "lint-infra self-test: broken copies are caught (bad Runtime, Type Taskk, misspelt IAM action)"
}

install_tools
exec 9>&-
case "${1:-}" in
  --self-test) self_test ;;
  --translate) "$venv/bin/python" "$root/infra/scripts/translate.py" "$2" >"$3" ;;
  *) lint "$root/infra" && echo "lint-infra: template and state machines clean (cfn-lint: 0 errors, 0 warnings)" ;;
esac
