#!/usr/bin/env bash
# Makes a small root filesystem from the host's busybox-static binary, with
# no network: ./busybox-rootfs.sh DIR   (then: skiff image build --from-dir DIR …)
# Needs /bin/busybox (Debian busybox-static).
set -euo pipefail
root=${1:?usage: busybox-rootfs.sh DIR}
bb=${BUSYBOX:-/bin/busybox}
[ -x "$bb" ] || { echo "busybox-rootfs: $bb not found (apt-get install busybox-static)" >&2; exit 1; }
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
