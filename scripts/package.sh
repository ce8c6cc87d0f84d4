#!/usr/bin/env bash
# make package: build every function for Lambda (arm64, provided.al2023) with cargo-lambda into
# target/lambda/<name>/bootstrap.zip and print their sizes. cargo-lambda comes from its prebuilt PyPI wheel
# (which brings zig as the cross linker), installed once into ${CPO_CACHE:-$HOME/.cache/cpo}.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cache="${CPO_CACHE:-$HOME/.cache/cpo}"
venv="$cache/venv-lambda"
version="1.9.2"
if ! "$venv/bin/cargo-lambda" --version 2>/dev/null | grep -q "$version"; then
  echo "package: installing cargo-lambda $version into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "cargo-lambda==$version"
fi
rustup target list --installed | grep -q aarch64-unknown-linux-gnu || rustup target add aarch64-unknown-linux-gnu
export PATH="$venv/bin:$PATH"
cd "$root"
bins=()
for f in "$@"; do bins+=(--bin "$f"); done
cargo lambda build --release --arm64 --output-format zip "${bins[@]}"
target="${CARGO_TARGET_DIR:-$root/target}"
printf '%-12s %12s %12s\n' function bootstrap zip
for f in "$@"; do
  zip="$target/lambda/$f/bootstrap.zip"
  raw=$(unzip -l "$zip" | awk '/bootstrap$/ {print $1}')
  printf '%-12s %12s %12s\n' "$f" "$raw" "$(stat -c %s "$zip")"
done
