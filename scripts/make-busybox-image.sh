#!/usr/bin/env bash
# Builds a one-layer OCI image layout from the host's busybox-static binary,
# without any network: ./make-busybox-image.sh OUT_DIR [TAG]
# Needs: /bin/busybox (Debian busybox-static), tar, gzip, sha256sum.
set -euo pipefail
out=${1:?usage: make-busybox-image.sh OUT_DIR [TAG]}
tag=${2:-latest}
bb=${BUSYBOX:-/bin/busybox}
[ -x "$bb" ] || { echo "make-busybox-image: $bb not found (apt-get install busybox-static)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,dev,proc,sys,tmp,root,run,var/tmp,home}
chmod 1777 "$root/tmp" "$root/var/tmp"
chmod 700 "$root/root"
cp "$bb" "$root/bin/busybox"
chmod 755 "$root/bin/busybox"
for applet in $("$bb" --list-full); do
  case "$applet" in linuxrc|bin/busybox) continue ;; esac
  up=$(dirname "$applet" | sed -e 's#[^/][^/]*#..#g')
  ln -sf "$up/bin/busybox" "$root/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"

mkdir -p "$out/blobs/sha256"
# Fixed owners and mtimes: the same busybox gives the same digests.
(cd "$root" && find . -mindepth 1 | LC_ALL=C sort) >"$work/list"
tar -C "$root" --create --file "$work/layer.tar" --format=posix --numeric-owner --owner=0 --group=0 \
  --mtime=@1700000000 --pax-option=delete=atime,delete=ctime --no-recursion -T "$work/list"
diff_id=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
gzip -n -c "$work/layer.tar" >"$work/layer.tar.gz"
layer=$(sha256sum "$work/layer.tar.gz" | cut -d' ' -f1)
layer_size=$(stat -c %s "$work/layer.tar.gz")
mv "$work/layer.tar.gz" "$out/blobs/sha256/$layer"

blob() { # write stdin as a blob, print "digest size"
  cat >"$work/blob"
  local d; d=$(sha256sum "$work/blob" | cut -d' ' -f1)
  mv "$work/blob" "$out/blobs/sha256/$d"
  echo "$d $(stat -c %s "$out/blobs/sha256/$d")"
}
read -r config config_size < <(printf '{"created":"2023-11-14T22:13:20Z","architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["/bin/sh"],"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created":"2023-11-14T22:13:20Z","created_by":"make-busybox-image.sh"}]}' "$diff_id" | blob)
read -r manifest manifest_size < <(printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]}' "$config" "$config_size" "$layer" "$layer_size" | blob)
printf '{"imageLayoutVersion":"1.0.0"}' >"$out/oci-layout"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"%s"}}]}' "$manifest" "$manifest_size" "$tag" >"$out/index.json"
echo "$out:$tag"
