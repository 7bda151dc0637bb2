#!/usr/bin/env python3
"""Hostile layer tarballs as the first seeds of the unpack_layer fuzz target
(fuzz/seeds/unpack_layer): a fuzzer that starts from bytes rarely finds a
tar header's checksum, so it starts from every trick a hostile image plays.
Run once; scripts/fuzz.sh --keep merges what runs find on top of them."""
import io
import os
import sys
import tarfile

out = sys.argv[1] if len(sys.argv) > 1 else "fuzz/seeds/unpack_layer"
os.makedirs(out, exist_ok=True)


def entry(name, kind=tarfile.REGTYPE, data=b"", link="", mode=0o644, **kw):
    ti = tarfile.TarInfo(name)
    ti.type, ti.linkname, ti.mode, ti.size = kind, link, mode, len(data)
    for k, v in kw.items():
        setattr(ti, k, v)
    return ti, data


SEEDS = {
    "plain": [entry("etc/", tarfile.DIRTYPE, mode=0o755), entry("etc/hostname", data=b"box\n")],
    "dotdot": [entry("../escape", data=b"x"), entry("a/../../escape2", data=b"x")],
    "absolute": [entry("/etc/passwd", data=b"root::0:0::/:/bin/sh\n")],
    "symlink-escape": [entry("link", tarfile.SYMTYPE, link="../../"), entry("link/escape", data=b"x")],
    "symlink-abs": [entry("etc", tarfile.SYMTYPE, link="/etc"), entry("etc/shadow", data=b"x")],
    "hardlink-escape": [entry("h", tarfile.LNKTYPE, link="../../etc/passwd"), entry("h2", tarfile.LNKTYPE, link="/etc/passwd")],
    "hardlink-inside": [entry("a", data=b"data"), entry("b", tarfile.LNKTYPE, link="a")],
    "devices": [
        entry("dev/null", tarfile.CHRTYPE, devmajor=1, devminor=3),
        entry("dev/sda", tarfile.BLKTYPE, devmajor=8, devminor=0),
        entry("fifo", tarfile.FIFOTYPE),
    ],
    "whiteouts": [
        entry("dir/", tarfile.DIRTYPE, mode=0o755),
        entry("dir/.wh..wh..opq"),
        entry(".wh.gone"),
        entry("dir/.wh.../x"),
        entry(".wh.."),
    ],
    "setuid-and-modes": [entry("bin/su", data=b"\x7fELF", mode=0o4755), entry("d/", tarfile.DIRTYPE, mode=0o000)],
    "long-names": [entry("d/" + "n" * 300, data=b"x"), entry("l", tarfile.SYMTYPE, link="t" * 300)],
    "replace-dir-with-file": [entry("x/", tarfile.DIRTYPE), entry("x/y", data=b"1"), entry("x", data=b"2")],
    "replace-file-with-symlink": [entry("x", data=b"1"), entry("x", tarfile.SYMTYPE, link="/")],
    "owners": [entry("f", data=b"x", uid=4294967295, gid=65534, uname="nobody", gname="nogroup")],
}

for name, entries in SEEDS.items():
    for fmt, suffix in ((tarfile.PAX_FORMAT, "pax"), (tarfile.GNU_FORMAT, "gnu")):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
            for ti, data in entries:
                t.addfile(ti, io.BytesIO(data) if data else None)
        with open(os.path.join(out, f"{name}-{suffix}.tar"), "wb") as f:
            f.write(buf.getvalue())
