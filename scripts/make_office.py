#!/usr/bin/env python3
"""Builds the Office and mail test files from their sources.

The Word, Writer, Excel, Calc, PowerPoint and Impress files are made by
LibreOffice (Debian's `libreoffice-*-nogui` packages) from the flat
OpenDocument sources in fixtures/office-src/, so the tests read files a real
office suite wrote. The e-mail is made with Python's `email` package: a
message with a Word attachment, a text attachment and a forwarded message.
The outputs are committed; run this again after changing a source:

    python3 scripts/make_office.py
"""

import shutil
import subprocess
import sys
import tempfile
from email.message import EmailMessage
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "fixtures" / "office-src"
OUT = ROOT / "fixtures" / "office"
DEMO = ROOT / "fixtures" / "corpus" / "internal"

CONVERSIONS = [
    ("richtlinie.fodt", ["docx", "odt"]),
    ("kosten.fods", ["xlsx", "ods"]),
    ("quartal.fodp", ["pptx", "odp"]),
    ("dienstwagenregelung.fodt", ["docx"]),
]


def convert(src: Path, fmt: str, outdir: Path) -> Path:
    soffice = shutil.which("soffice") or sys.exit(
        "soffice not found: apt-get install libreoffice-writer-nogui "
        "libreoffice-calc-nogui libreoffice-impress-nogui"
    )
    subprocess.run(
        [soffice, "--headless", "--convert-to", fmt, "--outdir", str(outdir), str(src)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return outdir / (src.stem + "." + fmt)


def mail(attachment: Path) -> bytes:
    fwd = EmailMessage()
    fwd["Subject"] = "Schlüsselübergabe Lager Nord"
    fwd["From"] = "Facility <facility@example.com>"
    fwd["To"] = "Team Logistik <logistik@example.com>"
    fwd["Date"] = "Mon, 16 Nov 2026 08:15:00 +0100"
    fwd.set_content("Die Schlüssel für Lager Nord liegen ab Montag an der Pforte, Fach 12.\n")

    m = EmailMessage()
    m["Subject"] = "Aufbewahrungsfristen: neue Richtlinie"
    m["From"] = "Petra Lang <petra.lang@example.com>"
    m["To"] = "Alle <all@example.com>"
    m["Cc"] = "Recht <legal@example.com>"
    m["Date"] = "Tue, 24 Nov 2026 09:30:00 +0100"
    m.set_content(
        "Hallo zusammen,\n\n"
        "anbei die neue Richtlinie zu Aufbewahrungsfristen. Sie gilt ab 1. Januar 2027.\n"
        "Fragen bitte bis Freitag an das Rechtsteam.\n\n"
        "Viele Grüße\nPetra\n"
    )
    m.add_alternative(
        "<html><body><p>Hallo zusammen,</p><p>anbei die neue Richtlinie zu "
        "Aufbewahrungsfristen. Sie gilt ab 1. Januar 2027.</p></body></html>",
        subtype="html",
    )
    m.add_attachment(
        attachment.read_bytes(),
        maintype="application",
        subtype="vnd.openxmlformats-officedocument.wordprocessingml.document",
        filename="richtlinie.docx",
    )
    m.add_attachment(
        "Checkliste: Ordner beschriften, Frist eintragen, Ablage prüfen.\n",
        filename="checkliste.txt",
    )
    m.add_attachment(b"\x00\x01binary", maintype="application", subtype="octet-stream",
                     filename="daten.bin")
    m.add_attachment(fwd)
    return bytes(m)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        for src, fmts in CONVERSIONS:
            for fmt in fmts:
                made = convert(SRC / src, fmt, t)
                dest = DEMO if src.startswith("dienstwagen") else OUT
                shutil.copy(made, dest / made.name)
                print("made", (dest / made.name).relative_to(ROOT))
    (OUT / "fristen.eml").write_bytes(mail(OUT / "richtlinie.docx"))
    print("made", (OUT / "fristen.eml").relative_to(ROOT))


if __name__ == "__main__":
    main()
