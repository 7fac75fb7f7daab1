#!/bin/bash
# Builds one commit's bootstrap twice, each from a clean clone of its own at a different path
# and at a different time, the second after `mvn clean`, and compares the digests of what is
# reproducible: initramfs.img, vmlinuz, vmlinux and modules.sqfs (SHA256SUMS; the second build
# makes the modules image afresh rather than from build.sh's cache). agent-cache.img, the agent's
# class archive, is not compared (build.sh says why). On a difference it unpacks both
# initramfs images and names the files that differ, and for a jar the entries that differ.
#
#   check-reproducible.sh [--commit REV] [--work DIR] [--keep]
#
#   --commit  the commit to build (default HEAD of this checkout; uncommitted changes are not
#             built)
#   --work    where the clones go (default node-agent/target/repro, which git ignores)
#   --keep    keep the clones (they are kept anyway when the builds differ)
#
# Each clone runs `mvn -B -q $CB_REPRO_MVN_ARGS -pl node-agent -am package -DskipTests
# -Pbootstrap` (CB_REPRO_MVN_ARGS, e.g. -o for offline, is empty by default). Needs root (the
# bootstrap build does), git, Maven, and what build.sh needs. Exit 0: the same bytes; 1: the
# builds differ; 2: a build failed.
set -euo pipefail
export LC_ALL=C
here=$(cd "$(dirname "$0")" && pwd)
module=$(cd "$here/../.." && pwd)
top=$(git -C "$module" rev-parse --show-toplevel)
rev=HEAD work="$module/target/repro" keep=no
while [ $# -gt 0 ]; do
  case "$1" in
    --commit) rev=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --keep) keep=yes; shift ;;
    *) echo "check-reproducible: unknown argument '$1'; see the header of $0" >&2; exit 2 ;;
  esac
done
commit=$(git -C "$top" rev-parse --verify "$rev^{commit}")
read -r -a mvn_args <<<"${CB_REPRO_MVN_ARGS:-}"
rm -rf "$work"
mkdir -p "$work"
work=$(cd "$work" && pwd)
# Two paths of different lengths: nothing in the output may depend on where the clone is.
dirs=("$work/a/chrootbooter" "$work/bb/second-clone/chrootbooter")
t0=$SECONDS

build() { # build N: clone, (mvn clean,) package; the bootstrap ends up in $work/out.N
  local n=$1 dir=${dirs[$(($1 - 1))]} log="$work/build.$1.log"
  git clone -q --no-checkout "$top" "$dir"
  git -C "$dir" checkout -q --detach "$commit"
  local goals=(package)
  [ "$n" = 1 ] || goals=(clean package)
  echo "check-reproducible: build $n in $dir (mvn ${goals[*]})"
  # The second build makes the modules image again instead of taking build.sh's cached copy.
  local rebuild=no
  [ "$n" = 1 ] || rebuild=yes
  if ! (cd "$dir" && CB_MODULES_REBUILD=$rebuild mvn -B -q "${mvn_args[@]}" -pl node-agent -am "${goals[@]}" -DskipTests -Pbootstrap) >"$log" 2>&1; then
    echo "check-reproducible: build $n failed; the end of $log:" >&2
    tail -30 "$log" >&2
    exit 2
  fi
  cp -a "$dir/node-agent/target/bootstrap" "$work/out.$n"
}
build 1
build 2
echo "check-reproducible: both builds in $((SECONDS - t0)) s"

if cmp -s "$work/out.1/SHA256SUMS" "$work/out.2/SHA256SUMS"; then
  echo "check-reproducible: identical (commit $commit):"
  sed 's/^/  /' "$work/out.1/SHA256SUMS"
  echo "check-reproducible: not compared: agent-cache.img (the class archive), build 1 and 2:"
  cat "$work/out.1/agent-cache.sha256" "$work/out.2/agent-cache.sha256" | sed 's/^/  /'
  [ "$keep" = yes ] || rm -rf "$work"
  exit 0
fi

echo "check-reproducible: the builds differ (commit $commit; clones kept in $work):" >&2
diff "$work/out.1/SHA256SUMS" "$work/out.2/SHA256SUMS" | sed -n 's/^\([<>]\)/  \1/p' >&2 || true
# initramfs.img ends with 4 to 7 zero bytes (build.sh says why), which the kernel skips and
# lz4 reports as a corrupt frame after it has written the whole archive: its status is ignored.
decompress() {
  case "$(sed -n 's/^compression=//p' "$work/out.1/build-info")" in
    lz4) lz4 -dc 2>/dev/null || true ;; zstd) zstd -dc ;; xz) xz -dc ;; *) cat ;;
  esac
}
for n in 1 2; do
  mkdir -p "$work/root.$n"
  (cd "$work/root.$n" && decompress <"$work/out.$n/initramfs.img" | cpio -idm --quiet --no-absolute-filenames)
  # One line per file: type, mode, and the digest of a file or the target of a link.
  (cd "$work/root.$n" && find . -mindepth 1 | sort | while IFS= read -r f; do
    if [ -L "$f" ]; then echo "$f link $(readlink "$f")"
    elif [ -f "$f" ]; then echo "$f $(stat -c %a "$f") $(sha256sum <"$f" | cut -c1-64)"
    else echo "$f $(stat -c '%F %a' "$f")"; fi
  done) >"$work/files.$n"
done
differs=$(diff "$work/files.1" "$work/files.2" | sed -n 's/^[<>] \(\S*\) .*/\1/p' | sort -u || true)
[ -n "$differs" ] || echo "  no file inside the initramfs differs (the difference is in the cpio or its compression)" >&2
for f in $differs; do
  echo "  differs: ${f#./}" >&2
  case "$f" in
    *.jar)
      if [ -f "$work/root.1/$f" ] && [ -f "$work/root.2/$f" ]; then
        # unzip -lv: size, method, date, time and CRC-32 of every entry.
        diff <(unzip -lv "$work/root.1/$f" | awk 'NR > 3 && NF >= 8') \
          <(unzip -lv "$work/root.2/$f" | awk 'NR > 3 && NF >= 8') |
          sed -n 's/^\([<>]\).* \(\S*\)$/\2/p' | sort -u | head -20 | sed 's/^/    entry: /' >&2 || true
      fi ;;
  esac
done
exit 1
