"""Writes tar archives with odd but valid headers (and a few invalid ones) into the directory
given as the first argument, one header block at a time, so every byte is what the test means.
Used by GnuTarCompatTest, which compares the agent's extraction of each with GNU tar's."""
import sys

out = sys.argv[1]
BLOCK = 512


def octal(value, width):
    return b"%0*o\0" % (width - 1, value)


def header(name, typeflag=b"0", size=0, mode=0o644, uid=0, gid=0, mtime=1700000000,
           link=b"", magic=b"ustar\x0000", fields=None):
    b = bytearray(BLOCK)
    b[0:len(name)] = name
    b[100:108] = octal(mode, 8)
    b[108:116] = octal(uid, 8)
    b[116:124] = octal(gid, 8)
    b[124:136] = octal(size, 12)
    b[136:148] = octal(mtime, 12)
    b[156:157] = typeflag
    b[157:157 + len(link)] = link
    b[257:257 + len(magic)] = magic
    for offset, raw in (fields or {}).items():
        b[offset:offset + len(raw)] = raw
    b[148:156] = b" " * 8
    b[148:156] = b"%06o\0 " % sum(b)
    return bytes(b)


def data(raw):
    return raw + b"\0" * (-len(raw) % BLOCK)


def pax(records):
    body = b""
    for key, value in records:
        line = b" " + key + b"=" + value + b"\n"
        n = len(line)
        while len(str(n + len(str(n))).encode()) + len(line) != n:
            n = len(str(n).encode()) + len(line)
        n = len(str(n).encode()) + len(line)
        body += str(n).encode() + line
    return body


def entry(name, content=b"", **kw):
    return header(name, size=len(content), **kw) + data(content)


def special(typeflag, body, name=b"././@LongLink", magic=b"ustar\x0000"):
    return header(name, typeflag=typeflag, size=len(body), magic=magic) + data(body)


END = b"\0" * (2 * BLOCK)


def write(name, *parts):
    with open(f"{out}/{name}", "wb") as f:
        f.write(b"".join(parts) + END)


# uid and gid fields all NUL: GNU tar reads them as 0.
write("nul-owner.tar",
      entry(b"dir/", typeflag=b"5", mode=0o755),
      entry(b"dir/nul-owner", b"owner 0\n", fields={108: b"\0" * 8, 116: b"\0" * 8}))

# Base-256 uid, gid and a negative mtime (GNU format), as GNU tar writes numbers octal cannot hold.
write("base256.tar",
      entry(b"big-ids", b"ids\n", magic=b"ustar  \0",
            fields={108: b"\x80\0\0\0\0\x2d\xc6\xc0",      # 3000000
                    116: b"\x80\0\0\0\0\x2d\xc6\xc1",      # 3000001
                    124: b"\x80" + b"\0" * 10 + b"\x04",   # size 4
                    136: b"\xff" * 10 + b"\xfc\x18"}))     # mtime -1000

# Numbers as older tars write them: leading blanks, a leading NUL, text after the terminator.
write("lenient-octal.tar",
      entry(b"blanks", b"b\n", fields={108: b"   1750 ", 100: b"  644 \0\0"}),
      entry(b"after-blank", b"a\n", fields={116: b"1751 zz\0"}),
      entry(b"leading-nul", b"n\n", fields={108: b"\0001752\0\0\0"}))

# pax mtimes GNU tar cannot use (it reports them and keeps the header's), and one with a long
# fraction it reads.
write("pax-mtime.tar",
      special(b"x", pax([(b"mtime", b"1700000000.1234567891234")]), name=b"PaxHeaders/fraction"),
      entry(b"fraction", b"f\n"),
      special(b"x", pax([(b"mtime", b"99999999999999999999999999")]), name=b"PaxHeaders/range"),
      entry(b"out-of-range", b"r\n", mtime=1600000000),
      special(b"x", pax([(b"mtime", b"12abc")]), name=b"PaxHeaders/bad"),
      entry(b"malformed", b"m\n", mtime=1500000000))

# A pax record with no entry after it: the archive ends there.
write("pax-at-end.tar",
      entry(b"first", b"1\n"),
      special(b"x", pax([(b"path", b"never-written")]), name=b"PaxHeaders/orphan"))

# A GNU long name whose data has bytes after its NUL: the name ends at the NUL.
longname = b"dir-" + b"n" * 120 + b"/file"
write("longname-nul.tar",
      special(b"L", longname + b"\0garbage\0", magic=b"ustar  \0"),
      entry(longname[:100], b"long\n", magic=b"ustar  \0"))

# A uid field GNU tar rejects: digits, then a letter.
write("bad-uid.tar", entry(b"bad-uid", b"x\n", fields={108: b"12x4\0\0\0\0"}))

# A global pax path: GNU tar applies it to every later entry, and refuses the "..".
write("global-dotdot.tar",
      special(b"g", pax([(b"path", b"../evil")]), name=b"GlobalHead.0"),
      entry(b"a", b"a\n"),
      entry(b"b", b"b\n"))

# A global pax uid applies to every later entry.
write("global-uid.tar",
      special(b"g", pax([(b"uid", b"4321"), (b"gid", b"4322")]), name=b"GlobalHead.0"),
      entry(b"owned", b"o\n"),
      special(b"x", pax([(b"uid", b"7")]), name=b"PaxHeaders/own"),
      entry(b"own-uid", b"7\n"))

# A pax 0.1 sparse map whose region lies beyond the file's size: GNU tar extracts the file with
# the region.
write("sparse-beyond-size.tar",
      special(b"x", pax([(b"GNU.sparse.size", b"100"), (b"GNU.sparse.numblocks", b"1"),
                         (b"GNU.sparse.map", b"200,4"), (b"GNU.sparse.name", b"hole")]),
              name=b"PaxHeaders/hole"),
      entry(b"GNUSparseFile.0/hole", b"data"))

# An old GNU sparse map holding fewer bytes than the archive's data: GNU tar skips the rest.
write("sparse-short-map.tar",
      entry(b"short", b"data" + b"\0" * 508 + b"hidden header?", typeflag=b"S", magic=b"ustar  \0",
            fields={386: octal(0, 12), 398: octal(4, 12), 483: octal(4096, 12)}))

# An old GNU sparse map holding more bytes than the archive's data: they would be read from the
# next headers.
write("sparse-long-map.tar",
      entry(b"long", b"data", typeflag=b"S", magic=b"ustar  \0",
            fields={386: octal(0, 12), 398: octal(600, 12), 483: octal(4096, 12)}),
      entry(b"next", b"next header\n"))

# A pax 1.0 sparse map of more than 1 MiB at the start of the data.
regions = 150000
sparse_map = b"%d\n" % regions + b"".join(b"%d\n1\n" % (2 * i) for i in range(regions))
sparse_map += b"\0" * (-len(sparse_map) % BLOCK)
write("sparse-huge-map.tar",
      special(b"x", pax([(b"GNU.sparse.major", b"1"), (b"GNU.sparse.minor", b"0"),
                         (b"GNU.sparse.name", b"huge-map"),
                         (b"GNU.sparse.realsize", b"%d" % (2 * regions))]),
              name=b"PaxHeaders/huge-map"),
      entry(b"GNUSparseFile.0/huge-map", sparse_map + b"\1" * regions))

# Old GNU sparse extension blocks that go on for more than 1 MiB.
extension = bytearray(BLOCK)
for i in range(21):
    extension[i * 24:i * 24 + 24] = octal(0, 12) + octal(0, 12)
extension[504] = 1
write("sparse-endless-extensions.tar",
      header(b"endless", typeflag=b"S", magic=b"ustar  \0",
             fields={386: (octal(0, 12) * 8), 482: b"\1", 483: octal(0, 12)}),
      bytes(extension) * 2100)
