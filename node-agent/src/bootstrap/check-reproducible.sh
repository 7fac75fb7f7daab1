#!/bin/bash
# Builds the bootstrap twice from the same inputs and compares the digests of
# initramfs.img, vmlinuz and vmlinux. Exits 1 on any difference and names the files that
# differ inside the initramfs.
#   check-reproducible.sh [--app target/quarkus-app] [--cold-cds] [--compression lz4|zstd|xz]
# Both builds share the CDS cache (see build.sh: JDK 17's CDS dumps are not deterministic),
# so the second reuses the first's archives. --cold-cds dumps them afresh in both builds and
# passes when nothing but the class archives (.jsa, .aot) differs.
# A build takes about a minute on 2 cores.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
module=$(cd "$here/../.." && pwd)
app="$module/target/quarkus-app"
extra=()
cold=no
while [ $# -gt 0 ]; do
  case "$1" in
    --app) app=$2; shift 2 ;;
    --cold-cds) cold=yes; export CB_CDS_CACHE=off; shift ;;
    *) extra+=("$1"); shift ;;
  esac
done
base="$module/target/bootstrap-repro"
rm -rf "$base"
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$here" log -1 --format=%ct 2>/dev/null || echo 1700000000)}
for n in 1 2; do
  CB_KEEP_WORK=yes bash "$here/build.sh" --app "$app" --out "$base/$n" "${extra[@]}" > "$base.$n.log" 2>&1 ||
    { echo "check-reproducible: build $n failed; see $base.$n.log" >&2; tail -20 "$base.$n.log" >&2; exit 2; }
done
if cmp -s "$base/1/SHA256SUMS" "$base/2/SHA256SUMS"; then
  echo "check-reproducible: identical:"; sed 's/^/  /' "$base/1/SHA256SUMS"
  rm -rf "${base:?}"/*/  "$base.1.log" "$base.2.log" "$base".[12].work 2>/dev/null || true
  rm -rf "$base"
  exit 0
fi
echo "check-reproducible: the builds differ:" >&2
diff "$base/1/SHA256SUMS" "$base/2/SHA256SUMS" >&2 || true
(cd "$base/1.work/root" && find . -type f | sort | xargs sha256sum) > "$base/1.files"
(cd "$base/2.work/root" && find . -type f | sort | xargs sha256sum) > "$base/2.files"
differs=$(diff "$base/1.files" "$base/2.files" | grep '^[<>]' | awk '{print $3}' | sort -u)
# shellcheck disable=SC2001 # prefixes every line of the list
echo "$differs" | sed 's/^/  differs: /' >&2
# Passes when no differing file is anything but a class archive, also when no file differs.
if [ "$cold" = yes ] && ! grep -qvE '^$|\.(jsa|aot)$' <<<"$differs"; then
  echo "check-reproducible: --cold-cds: only the CDS archives differ (expected on JDK 17)"
  exit 0
fi
exit 1
