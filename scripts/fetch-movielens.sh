#!/usr/bin/env bash
# Downloads one MovieLens data set from GroupLens, verifies it against the
# MD5 checksum GroupLens publishes beside it, and unpacks it.
#
#   scripts/fetch-movielens.sh NAME [DEST]
#
# NAME is one of the names below; DEST defaults to <repo>/data/NAME. The
# archive's top folder (e.g. ml-10M100K/) is unpacked as DEST itself. Safe to
# re-run: a DEST already unpacked and verified is left as it is. Nothing is
# left behind on failure.
#
# Environment:
#   ESAPN_MOVIELENS_MIRROR  base URL to download from instead of GroupLens
#                           (file:// allowed), holding NAME.zip and NAME.zip.md5
#   ESAPN_DOWNLOADER        curl or python (default: curl when installed, else
#                           python3's urllib)
set -euo pipefail

names=(ml-1m ml-10m ml-20m ml-25m ml-latest-small ml-latest)
base_url=${ESAPN_MOVIELENS_MIRROR:-https://files.grouplens.org/datasets/movielens}
base_url=${base_url%/}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
marker=.esapn-verified

fail() {
    echo "fetch-movielens.sh: $1" >&2
    exit "${2:-1}"
}

usage() {
    echo "usage: scripts/fetch-movielens.sh NAME [DEST]" >&2
    echo "  NAME: one of ${names[*]}" >&2
    exit 2
}

[[ $# -ge 1 && $# -le 2 ]] || usage
case $1 in -h|--help) usage ;; esac
name=$1
known=false
for n in "${names[@]}"; do [[ $n == "$name" ]] && known=true; done
$known || fail "unknown data set '$name'; valid names: ${names[*]}" 2
dest=${2:-$repo/data/$name}
dest=${dest%/}

if [[ -f $dest/$marker ]]; then
    echo "fetch-movielens.sh: $name already unpacked and verified in $dest"
    exit 0
fi
[[ ! -e $dest ]] || fail "$dest exists but is not a verified download of $name: remove it, or pick another DEST"

command -v python3 >/dev/null 2>&1 || fail "python3 is needed to unpack the archive: apt-get install python3"

# download URL FILE
downloader=${ESAPN_DOWNLOADER:-}
if [[ -z $downloader ]]; then
    if command -v curl >/dev/null 2>&1; then downloader=curl; else downloader=python; fi
fi
case $downloader in curl|python) ;; *) fail "ESAPN_DOWNLOADER must be curl or python, got '$downloader'" 2 ;; esac

download() {
    if [[ $downloader == curl ]]; then
        curl --fail --silent --show-error --location --retry 3 --output "$2" "$1"
    else
        python3 - "$1" "$2" <<'PY'
import shutil, sys, urllib.request
with urllib.request.urlopen(sys.argv[1]) as response, open(sys.argv[2], "wb") as out:
    shutil.copyfileobj(response, out)
PY
    fi
}

# Work beside DEST (same file system) so the final move is atomic.
parent=$(dirname "$dest")
mkdir -p "$parent"
work=$(mktemp -d "$parent/.fetch-$name.XXXXXX")
trap 'rm -rf "$work"' EXIT

url=$base_url/$name.zip
echo "fetch-movielens.sh: downloading $url"
download "$url" "$work/$name.zip" || fail "could not download $url"
download "$url.md5" "$work/$name.zip.md5" || fail "could not download the checksum $url.md5"

# GroupLens writes "MD5 (NAME.zip) = HEX"; md5sum writes "HEX  NAME.zip".
expected=$(grep -oE '\b[0-9a-fA-F]{32}\b' "$work/$name.zip.md5" | head -n 1 | tr 'A-F' 'a-f' || true)
[[ -n $expected ]] || fail "no MD5 checksum found in $url.md5"
actual=$(md5sum "$work/$name.zip" | cut -d ' ' -f 1)
if [[ $actual != "$expected" ]]; then
    fail "checksum did not match for $url: expected MD5 $expected, got $actual (a broken or tampered download; nothing was unpacked)"
fi

python3 -m zipfile -e "$work/$name.zip" "$work/unpacked" || fail "could not unpack $url"
# The archives hold one top folder (ml-1m/, ml-10M100K/, …): that folder becomes DEST.
shopt -s nullglob dotglob
entries=("$work/unpacked"/*)
if [[ ${#entries[@]} -eq 1 && -d ${entries[0]} ]]; then
    source_dir=${entries[0]}
else
    source_dir=$work/unpacked
fi
echo "$expected  $name.zip" >"$source_dir/$marker"
mv "$source_dir" "$dest"
echo "fetch-movielens.sh: $name verified (MD5 $expected) and unpacked into $dest"
