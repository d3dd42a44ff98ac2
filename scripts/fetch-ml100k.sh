#!/usr/bin/env bash
# Fetches real MovieLens-100k into data/ml-100k/ml-100k.inter (RecBole's atomic
# format: 100,000 ratings, 943 users, 1,682 items, with timestamps). GroupLens'
# site is not reachable from every machine; PyPI is, and RecBole's wheel
# carries the file. Both the wheel and the file are checked against SHA-256.
set -euo pipefail
cd "$(dirname "$0")/.."

dest=data/ml-100k
file=$dest/ml-100k.inter
wheel_sha=9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407
file_sha=4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff

if [ -f "$file" ] && echo "$file_sha  $file" | sha256sum -c --status; then
  echo "fetch-ml100k: $file present and verified"
  exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "fetch-ml100k: downloading recbole==1.2.1 from PyPI"
python3 -m pip download --quiet --no-deps --no-cache-dir recbole==1.2.1 -d "$tmp" \
  || { echo "fetch-ml100k: pip could not download recbole==1.2.1; check network access to PyPI" >&2; exit 1; }
whl=$(ls "$tmp"/recbole-1.2.1-*.whl)
echo "$wheel_sha  $whl" | sha256sum -c --status \
  || { echo "fetch-ml100k: checksum mismatch for $(basename "$whl"): expected $wheel_sha" >&2; exit 1; }
python3 - "$whl" "$tmp/ml-100k.inter" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    data = z.read("recbole/dataset_example/ml-100k/ml-100k.inter")
open(sys.argv[2], "wb").write(data)
PY
echo "$file_sha  $tmp/ml-100k.inter" | sha256sum -c --status \
  || { echo "fetch-ml100k: checksum mismatch for ml-100k.inter: expected $file_sha" >&2; exit 1; }
mkdir -p "$dest"
mv "$tmp/ml-100k.inter" "$file"
echo "fetch-ml100k: wrote $file (100,000 ratings)"
