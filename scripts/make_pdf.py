#!/usr/bin/env python3
"""Write a small, valid, multi-page text PDF (standard library only).

Used to build the PDFs of the sample corpus and PDFs for tests. Pages are
separated by form feeds (\\f) in the input; lines are wrapped at ~90 chars.
Text uses the Helvetica base font with WinAnsiEncoding, so German umlauts
and ß work. Usage: make_pdf.py INPUT.txt OUTPUT.pdf [--title T]
"""
import sys
import textwrap


def esc(s):
    b = s.encode("cp1252", errors="replace")
    out = bytearray()
    for c in b:
        if c in (0x28, 0x29, 0x5C):  # ( ) \
            out += b"\\" + bytes([c])
        else:
            out.append(c)
    return bytes(out)


def build(pages, title="document"):
    objs = []  # index i -> object number i+1

    def add(body):
        objs.append(body)
        return len(objs)

    font = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    pages_num = len(objs) + 1 + 0  # placeholder, fixed below
    objs.append(None)  # pages object, filled later
    pages_num = len(objs)
    kids = []
    for text in pages:
        lines = []
        for para in text.split("\n"):
            if not para.strip():
                lines.append("")
                continue
            lines.extend(textwrap.wrap(para, 90) or [""])
        stream = bytearray(b"BT\n/F1 10 Tf\n13 TL\n50 790 Td\n")
        for ln in lines[:58]:
            stream += b"(" + esc(ln) + b") Tj T*\n"
        stream += b"ET\n"
        content = add(b"<< /Length %d >>\nstream\n" % len(stream) + bytes(stream) + b"endstream")
        page = add(
            b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 595 842] "
            b"/Resources << /Font << /F1 %d 0 R >> >> /Contents %d 0 R >>"
            % (pages_num, font, content)
        )
        kids.append(page)
    objs[pages_num - 1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
        b" ".join(b"%d 0 R" % k for k in kids),
        len(kids),
    )
    info = add(b"<< /Title (" + esc(title) + b") /Producer (hort fixtures) >>")
    catalog = add(b"<< /Type /Catalog /Pages %d 0 R >>" % pages_num)
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objs):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % (i + 1) + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    for o in offsets:
        out += b"%010d 00000 n \n" % o
    out += b"trailer\n<< /Size %d /Root %d 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objs) + 1,
        catalog,
        info,
        xref,
    )
    return bytes(out)


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    src, dst = sys.argv[1], sys.argv[2]
    title = sys.argv[4] if len(sys.argv) > 4 and sys.argv[3] == "--title" else src
    with open(src, encoding="utf-8") as f:
        pages = f.read().split("\f")
    with open(dst, "wb") as f:
        f.write(build(pages, title))


if __name__ == "__main__":
    main()
