#!/usr/bin/env python3
"""Generates models/clip/unicode_tables_generated.c: the character data behind aqa's CLIP tokenizer.

CLIP's SimpleTokenizer cleans text with ftfy.fix_text, html.unescape, str.strip/split and
str.lower, then splits words with a `regex`-module pattern.  To give the same ids, the C code needs
the same character classes, so this script asks the very libraries CLIP runs on (no hand-typed
data):

  - the `regex` module (with IGNORECASE, as CLIP compiles its pattern): [\\p{L}], [\\p{N}],
    [^\\s\\p{L}\\p{N}] membership of every code point, and which code points equal an ASCII
    letter case-insensitively (for the literal alternatives 's, 't, <|startoftext|>, ...);
  - str.isspace, str.lower, and Python's final-sigma behaviour of str.lower (Cased and
    Case_Ignorable are probed through lower() of small strings);
  - unicodedata: canonical combining classes, canonical decompositions, primary composites (NFC);
  - html.entities.html5 and html's numeric-reference tables (html.unescape);
  - ftfy.chardata: HTML entity table, width map, ligatures, quotes, control characters, and the
    sloppy-windows-1252 codec for C1 controls.

Usage: python3 scripts/gen_unicode_tables.py [OUT.c]   (default models/clip/unicode_tables_generated.c)
Requires: python3 with `regex` and `ftfy` (pip install regex ftfy).
"""
import html
import html.entities
import os
import sys
import unicodedata

import ftfy
import ftfy.bad_codecs  # noqa: F401  (registers sloppy-windows-1252)
import regex
from ftfy import chardata

MAXCP = 0x110000


def c_str(s):
    """A C string literal holding the UTF-8 bytes of s."""
    out = '"'
    for b in s.encode("utf-8", "surrogatepass"):
        ch = chr(b)
        if ch == '"' or ch == "\\":
            out += "\\" + ch
        elif 0x20 <= b < 0x7F and ch != "?":  # '?' avoided: trigraphs
            out += ch
        else:
            out += "\\%03o" % b
    return out + '"'


def props():
    L = regex.compile(r"[\p{L}]", regex.IGNORECASE)
    N = regex.compile(r"[\p{N}]", regex.IGNORECASE)
    O = regex.compile(r"[^\s\p{L}\p{N}]", regex.IGNORECASE)
    q1 = set(range(0x2018, 0x201C)) | {0x02BC}
    q2 = set(range(0x201C, 0x2020))
    assert chardata.SINGLE_QUOTE_RE.pattern == "[\u02bc\u2018-\u201b]"
    assert chardata.DOUBLE_QUOTE_RE.pattern == "[\u201c-\u201f]"
    control = set(chardata.CONTROL_CHARS.keys())
    flags = []
    for cp in range(MAXCP):
        c = chr(cp)
        f = 0
        if L.match(c):
            f |= 1
        if N.match(c):
            f |= 2
        if O.match(c):
            f |= 4
        if c.isspace():
            f |= 8
        # Python's final-sigma rule (unicodeobject.c handle_capital_sigma) only asks "is it
        # case-ignorable" and, for characters that are not, "is it cased"; probe both:
        a = (c + "\u03a3").lower()[-1] == "\u03c2"        # not ignorable and cased
        b = ("A" + c + "\u03a3").lower()[-1] == "\u03c2"  # ignorable or cased
        if a:
            f |= 16
        elif b:
            f |= 32
        if cp in q1:
            f |= 64
        if cp in q2:
            f |= 128
        if cp in control:
            f |= 256
        if c.isdecimal():  # Python re's \d (ftfy's terminal-escape pattern)
            f |= 512
        flags.append(f)
    ranges = []
    lo = 0
    for cp in range(1, MAXCP + 1):
        if cp == MAXCP or flags[cp] != flags[lo]:
            ranges.append((lo, cp - 1, flags[lo]))
            lo = cp
    return ranges


def maps_lower():
    out = []
    for cp in range(MAXCP):
        c = chr(cp)
        low = c.lower()  # U+03A3 is listed as sigma; the final-sigma rule is applied in code
        if low != c:
            out.append((cp, [ord(x) for x in low]))
    return out


def is_hangul(cp):
    return 0xAC00 <= cp <= 0xD7A3


def nfc_tables():
    decomp, cccs, comps = [], [], []
    for cp in range(MAXCP):
        c = chr(cp)
        if 0xD800 <= cp <= 0xDFFF:
            continue
        d = unicodedata.normalize("NFD", c)
        if d != c and not is_hangul(cp):
            decomp.append((cp, [ord(x) for x in d]))
        k = unicodedata.combining(c)
        if k:
            if cccs and cccs[-1][1] == cp - 1 and cccs[-1][2] == k:
                cccs[-1] = (cccs[-1][0], cp, k)
            else:
                cccs.append((cp, cp, k))
        raw = unicodedata.decomposition(c)
        if raw and not raw.startswith("<"):
            parts = [int(x, 16) for x in raw.split()]
            # a primary composite: a canonical pair that NFC leaves composed
            if len(parts) == 2 and unicodedata.normalize("NFC", c) == c and not is_hangul(cp):
                comps.append((parts[0], parts[1], cp))
    comps.sort()
    return decomp, cccs, comps


def entities():
    names = {}
    for name, val in html.entities.html5.items():
        names.setdefault(name, [None, None])[0] = val
    for key, val in chardata.HTML_ENTITIES.items():
        assert key.startswith("&")
        names.setdefault(key[1:], [None, None])[1] = val
    rows = sorted(names.items(), key=lambda kv: kv[0].encode("utf-8"))
    return rows


def fold_ascii():
    out = []
    for letter in "abcdefghijklmnopqrstuvwxyz":
        pat = regex.compile(regex.escape(letter), regex.IGNORECASE)
        for cp in range(0x80, MAXCP):
            if pat.fullmatch(chr(cp)):
                out.append((cp, ord(letter)))
    out.sort()
    return out


def main():
    out_path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "models", "clip", "unicode_tables_generated.c")
    source = "Python %s, unicodedata %s, regex %s, ftfy %s" % (
        sys.version.split()[0], unicodedata.unidata_version, regex.__version__, ftfy.__version__)
    L = []
    w = L.append
    w("/* unicode_tables_generated.c: GENERATED by scripts/gen_unicode_tables.py -- do not edit.")
    w(" * Source: %s." % source)
    w(" * Character data for CLIP's tokenizer; see models/clip/unicode_tables.h. */")
    w('#include "models/clip/unicode_tables.h"')
    w("")
    w("const char aqa_uc_tables_source[] = %s;" % c_str(source))
    w("")

    def emit_map(name, rows):
        w("const aqa_uc_map %s[] = {" % name)
        for cp, to in rows:
            assert 1 <= len(to) <= 4
            w("    {0x%X, %d, {%s}}," % (cp, len(to), ", ".join("0x%X" % t for t in to)))
        w("};")
        w("const size_t %s_count = sizeof %s / sizeof %s[0];" % (name, name, name))
        w("")

    ranges = props()
    w("const aqa_uc_range aqa_uc_props[] = {")
    for lo, hi, f in ranges:
        w("    {0x%X, 0x%X, %d}," % (lo, hi, f))
    w("};")
    w("const size_t aqa_uc_props_count = sizeof aqa_uc_props / sizeof aqa_uc_props[0];")
    w("")
    emit_map("aqa_uc_lower", maps_lower())
    decomp, cccs, comps = nfc_tables()
    emit_map("aqa_uc_decomp", decomp)
    w("const aqa_uc_ccc aqa_uc_cccs[] = {")
    for lo, hi, k in cccs:
        w("    {0x%X, 0x%X, %d}," % (lo, hi, k))
    w("};")
    w("const size_t aqa_uc_cccs_count = sizeof aqa_uc_cccs / sizeof aqa_uc_cccs[0];")
    w("")
    w("const aqa_uc_comp aqa_uc_comps[] = {")
    for a, b, c in comps:
        w("    {0x%X, 0x%X, 0x%X}," % (a, b, c))
    w("};")
    w("const size_t aqa_uc_comps_count = sizeof aqa_uc_comps / sizeof aqa_uc_comps[0];")
    w("")
    emit_map("aqa_ftfy_width", sorted((k, [ord(x) for x in v]) for k, v in chardata.WIDTH_MAP.items()))
    emit_map("aqa_ftfy_ligatures",
             sorted((k, [ord(x) for x in v]) for k, v in chardata.LIGATURES.items()))
    assert chardata.C1_CONTROL_RE.pattern == r"[\x80-\x9f]"
    c1 = [ord(bytes([b]).decode("sloppy-windows-1252")) for b in range(0x80, 0xA0)]
    w("const uint32_t aqa_ftfy_c1[32] = {%s};" % ", ".join("0x%X" % x for x in c1))
    w("")
    w("const aqa_html_entity aqa_html_entities[] = {")
    for name, (h5, ft) in entities():
        w("    {%s, %s, %s}," % (c_str(name), c_str(h5) if h5 is not None else "NULL",
                                 c_str(ft) if ft is not None else "NULL"))
    w("};")
    w("const size_t aqa_html_entities_count = sizeof aqa_html_entities / sizeof aqa_html_entities[0];")
    w("")
    w("const aqa_uc_pair aqa_html_invalid_charrefs[] = {")
    for k, v in sorted(html._invalid_charrefs.items()):
        assert len(v) == 1
        w("    {0x%X, 0x%X}," % (k, ord(v)))
    w("};")
    w("const size_t aqa_html_invalid_charrefs_count = "
      "sizeof aqa_html_invalid_charrefs / sizeof aqa_html_invalid_charrefs[0];")
    w("const uint32_t aqa_html_invalid_codepoints[] = {")
    cps = sorted(html._invalid_codepoints)
    for i in range(0, len(cps), 8):
        w("    " + " ".join("0x%X," % x for x in cps[i:i + 8]))
    w("};")
    w("const size_t aqa_html_invalid_codepoints_count = "
      "sizeof aqa_html_invalid_codepoints / sizeof aqa_html_invalid_codepoints[0];")
    w("")
    w("const aqa_uc_pair aqa_uc_fold_ascii[] = {")
    for cp, a in fold_ascii():
        w("    {0x%X, 0x%X}," % (cp, a))
    w("};")
    w("const size_t aqa_uc_fold_ascii_count = sizeof aqa_uc_fold_ascii / sizeof aqa_uc_fold_ascii[0];")
    with open(out_path, "w", encoding="ascii") as f:
        f.write("\n".join(L) + "\n")
    print("wrote %s (%s)" % (out_path, source))


if __name__ == "__main__":
    main()
