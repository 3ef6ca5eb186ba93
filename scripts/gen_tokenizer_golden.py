#!/usr/bin/env python3
"""Golden data for aqa's CLIP tokenizer (tests/test_tokenizer.c).

Writes, under tests/data/tokenizer/:
  clip_golden.txt  one record per line, tab-separated:
                     kind  text  cleaned  raw_ids  ids77  ids8  decoded
                   kind     "ok", or "mojibake" where ftfy's mojibake repair (fix_encoding,
                            which aqa does not reproduce) changes the text
                   text     the input, escaped: \\\\ \\t \\n \\r, \\xHH (bytes < 0x20, 0x7f) and
                            \\uXXXX / \\UXXXXXXXX for other non-printable characters
                   cleaned  the text CLIP splits into words (same escaping)
                   raw_ids  SimpleTokenizer.encode(text)
                   ids77    clip.tokenize(text, 77, truncate=True) with the trailing zeros removed
                   ids8     clip.tokenize(text, 8, truncate=True) with the trailing zeros removed
                   decoded  SimpleTokenizer.decode(raw_ids) (same escaping)
  tiny_vocab.json, tiny_merges.txt, tiny_golden.txt
                   a small Hugging Face-format vocabulary (the 512 byte symbols, the first 300
                   merges of CLIP's file and the two special tokens, ids shuffled) and the ids it
                   gives for a few texts (text \\t raw_ids), to test aqa_bpe_load_hf on its own.

The reference is this script's own transcription of OpenAI CLIP's SimpleTokenizer
(clip/simple_tokenizer.py), using the real `ftfy` and `regex` packages that CLIP uses; when
open_clip_torch's tokenizer module can be imported (PYTHONPATH pointing at it, torchvision not
needed), every text without special-token words is cross-checked against it.

Usage: python3 scripts/gen_tokenizer_golden.py [--vocab PATH/bpe_simple_vocab_16e6.txt.gz]
Requires: pip install ftfy regex   (default vocab: ../shared/data/clip/bpe_simple_vocab_16e6.txt.gz)
"""
import argparse
import gzip
import html
import importlib.util
import json
import os
import random
import sys

import ftfy
import regex

SOT, EOT = "<|startoftext|>", "<|endoftext|>"
N_MERGES = 49152 - 256 - 2


def byte_symbols():
    """CLIP's byte -> character table: printable Latin-1 bytes stand for themselves, the other
    bytes get the characters from U+0100 on, in byte order."""
    keep = [b for b in range(256) if 0x21 <= b <= 0x7E or 0xA1 <= b <= 0xAC or 0xAE <= b <= 0xFF]
    table = {b: chr(b) for b in keep}
    nxt = 0x100
    for b in range(256):
        if b not in table:
            table[b] = chr(nxt)
            nxt += 1
    order = keep + [b for b in range(256) if b not in keep]  # vocabulary order
    return table, order


class Reference:
    """CLIP's SimpleTokenizer, restated: clean, split with CLIP's pattern, byte-level BPE."""

    PATTERN = regex.compile(
        r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+",
        regex.IGNORECASE)

    def __init__(self, token_to_id, merges):
        self.ids = token_to_id
        self.rank = {}
        for i, pair in enumerate(merges):
            self.rank[pair] = i  # a repeated pair keeps its last rank, like dict(zip(...))
        self.sym, _ = byte_symbols()
        self.byte_of = {c: b for b, c in self.sym.items()}
        self.token_of = {i: t for t, i in token_to_id.items()}

    @staticmethod
    def clean(text):
        text = ftfy.fix_text(text)
        text = html.unescape(html.unescape(text)).strip()
        text = regex.sub(r"\s+", " ", text).strip()  # CLIP imports `regex as re`
        return text.lower()

    def merge_word(self, word):
        if word in (SOT, EOT):
            return [word]
        parts = list(word[:-1]) + [word[-1] + "</w>"]
        while len(parts) > 1:
            ranked = [(self.rank[p], p) for p in zip(parts, parts[1:]) if p in self.rank]
            if not ranked:
                break
            _, (left, right) = min(ranked)
            joined, i = [], 0
            while i < len(parts):
                if i + 1 < len(parts) and parts[i] == left and parts[i + 1] == right:
                    joined.append(left + right)
                    i += 2
                else:
                    joined.append(parts[i])
                    i += 1
            parts = joined
        return parts

    def encode(self, text):
        out = []
        for word in self.PATTERN.findall(self.clean(text)):
            coded = "".join(self.sym[b] for b in word.encode("utf-8"))
            out.extend(self.ids[p] for p in self.merge_word(coded))
        return out

    def decode(self, ids):
        chars = "".join(self.token_of[i] for i in ids)
        data = bytes(self.byte_of[c] for c in chars)
        return data.decode("utf-8", errors="replace").replace("</w>", " ")

    def tokenize(self, text, context, truncate=True):
        seq = [self.ids[SOT]] + self.encode(text) + [self.ids[EOT]]
        if len(seq) > context:
            if not truncate:
                raise RuntimeError("too long")
            seq = seq[:context]
            seq[-1] = self.ids[EOT]
        return seq + [0] * (context - len(seq))


def load_openai(path):
    lines = gzip.open(path).read().decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1:N_MERGES + 1]]
    sym, order = byte_symbols()
    vocab = [sym[b] for b in order]
    vocab += [v + "</w>" for v in vocab]
    vocab += ["".join(m) for m in merges]
    vocab += [SOT, EOT]
    return dict(zip(vocab, range(len(vocab)))), merges


def escape(s):
    out = []
    for ch in s:
        o = ord(ch)
        if ch == "\\":
            out.append("\\\\")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif o < 0x20 or o == 0x7F:
            out.append("\\x%02x" % o)
        elif not ch.isprintable() and ch != " ":
            out.append("\\u%04x" % o if o < 0x10000 else "\\U%08x" % o)
        else:
            out.append(ch)
    return "".join(out)


def fixed_texts():
    t = []
    # diving and action-quality prompts
    t += [
        "a photo of a diver", "A diver performs a forward 2½ somersaults pike from the 10m platform",
        "back 3 1/2 somersaults tuck, degree of difficulty 3.5", "inward 1½ somersault in the pike position",
        "reverse 2½ somersaults with 1½ twists (5253B)", "armstand back double somersault, 626C",
        "107B 207C 307C 407C 5156B 6245D", "judges' scores: 8.5, 9.0, 8.0, 8.5, 9.5 -> total 76.50",
        "rip entry with almost no splash", "The diver's entry was vertical; the splash was minimal.",
        "synchronised 3m springboard final", "FINA/World Aquatics: DD × (sum of middle three scores)",
        "gymnast vault: Yurchenko 1½ twist, D-score 5.4, E-score 9.133", "a figure skater's triple axel",
        "poor take-off, short rotation, over-rotated entry", "a person diving into a pool",
        "high quality dive", "low quality dive", "a dive with a large splash", "no splash at all!!!",
        "Tom Daley (GBR) — 10 m platform, 2021 Tokyo Olympics", "Quan Hongchan 全红婵 scored 96.00",
        "Ski jumping: K-point 120 m, 18.5 style points", "skateboarding kickflip 360° flip",
    ]
    # numbers and punctuation
    t += [
        "3.5", "3,5", "1,000,000", "2024-08-01T12:34:56Z", "$12.50", "50%", "-0.25e-3", "007",
        "1/2 + 1/4 = 3/4", "x² + y² = z²", "½ ⅓ ¼ ¾", "① ② ③", "Ⅻ o'clock", "٣٤٥ (Arabic-Indic)",
        "१२३ देवनागरी", "...", "!!!", "?!?!", "---", "a--b", "(parenthesis) [brackets] {braces}",
        "email@example.com", "https://example.com/path?q=1&r=2", "#hashtag @mention", "C++ & C#",
        "snake_case_name", "camelCaseName", "a.b.c", "\"quoted\"", "'single'", "``latex''",
        "tab\tseparated\tvalues", "semi;colon:colon", "~tilde^caret|pipe\\backslash",
    ]
    # contractions and case
    t += [
        "it's", "don't", "we're", "they've", "I'm", "you'll", "he'd", "IT'S", "DON'T",
        "rock'n'roll", "'s'", "''s", "'", "''", "it ' s", "o'clock", "y'all'd've",
        "it’s curly", "it‘s", "“Smart quotes” and ‘single ones’", "„German“ quotes", "ʼn apostrophe",
        "Hello World", "HELLO WORLD", "hElLo WoRlD", "MiXeD CaSe WiTh NuMbErS 123",
        "it'ſ long s", "ſtraße", "Kelvin K sign", "Ångström Å sign",
    ]
    # accents, scripts
    t += [
        "café", "cafe\u0301 (decomposed)", "naïve coöperation", "Zürich", "São Paulo", "Łódź",
        "Tiếng Việt có dấu", "İstanbul", "I\u0307stanbul", "ΟΔΟΣ", "Σ", "ΣΑΣ.", "ΑΣ Σ", "σς",
        "Ἀθῆναι", "ᾳ and α\u0345", "Straße", "STRASSE", "ǅemal", "Привет, мир!", "Ёжик",
        "Ελληνικά", "مرحبا بالعالم", "שלום עולם", "नमस्ते दुनिया", "สวัสดีชาวโลก", "ქართული",
        "Հայերեն", "ᚠᚢᚦᚨᚱᚲ", "a\u0323\u0307", "a\u0307\u0323", "q\u0307\u0323", "e\u0301\u0301",
        "o\u031b\u0323\u0301", "\u1e0b\u0323", "A\u030a", "\u212b", "\u2126 ohm", "\u0958 qa",
        "\u0344", "\u0f73", "한국어 텍스트", "\u1100\u1161\u11a8", "\u1100\u1161 \uac00\u11a8",
        "日本語のテキスト", "中文测试：你好，世界！", "カタカナ ひらがな", "ｶﾞｷﾞｸﾞ half-width", "ﾊﾝｶｸ ｶﾀｶﾅ",
        "ＬＯＵＤ　ＮＯＩＳＥＳ", "ｆｕｌｌｗｉｄｔｈ １２３", "ﬁnal ﬂow oﬀ eﬃcient ﬄuﬀy", "ĳssel Ĳ", "ﬅ ﬆ",
        "µm micro", "№ 5", "™ ® ©", "ℌ𝔢𝔩𝔩𝔬 fraktur", "𝐁𝐨𝐥𝐝 math", "𝟙𝟚𝟛",
    ]
    # emoji and symbols
    t += [
        "😀", "👍🏽 thumbs up", "👨\u200d👩\u200d👧 family", "🇫🇷 🇯🇵 flags", "❤️ love", "1️⃣ keycap",
        "🏊‍♀️ swimmer", "🤿 diving mask", "🥇🥈🥉", "★☆✓✗", "→ ← ↑ ↓", "∑∫√∞≈≠", "♠♣♥♦", "⚠︎",
        "emoji😀in😀words", "🏳️‍🌈", "a\U0001f600b",
    ]
    # HTML entities
    t += [
        "&amp;", "&amp;amp;", "&amp;amp;amp;amp;", "&lt;b&gt;bold&lt;/b&gt;", "<b>bold</b> &amp; more",
        "a<b &amp; c", "x &lt;y", "&amp;lt;", "&#39;", "&#x27;", "&#X27;", "&#8217;s", "&eacute;t&eacute;",
        "&EACUTE;", "&Eacute;", "&eAcute;", "&notit;", "&not", "&amp", "&ampx", "&#0;", "&#128;",
        "&#x110000;", "&#1;", "&#x1F600;", "&#128512;", "&#55357;", "&nbsp;non-breaking", "&hellip;",
        "&frac12; &frac14;", "&Jscr;ohn", "AT&T", "&#12a;", "&#xZZ;", "&;", "&&amp;", "& amp;",
        "&quot;quoted&quot;", "&apos;", "&copy; 2024", "&SZLIG;", "&szlig;", "&NTILDE; &nTILDE;",
        "&ThisIsNotAnEntity;", "&amp;#39;", "&#38;amp;", "fish &amp; chips &amp;amp; more",
        "&lt;|endoftext|&gt;", "&#60;|startoftext|&#62;", "&checkmark;", "&HilbertSpace;",
        "&aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa;", "&#xD800;", "&#99999999999;", "&#x0d;x",
    ]
    # whitespace and control oddities
    t += [
        "", " ", "   ", "\t", "  leading and trailing  ", "multiple     spaces", "tabs\t\tand\tspaces",
        "no\u00a0break", "em\u2003space", "ideographic\u3000space", "line\u2028sep", "para\u2029sep",
        "nel\x85char", "cr\rlf", "crlf\r\nnext", "two\nlines", "form\x0cfeed", "vertical\x0btab",
        "zero\u200bwidth", "bom\ufeffhere", "\ufeffstart bom", "bell\x07", "\x1b[31mred\x1b[0m text",
        "esc\x1b[1;32mbold green", "del\x7fete", "\u206ainhibit", "object\ufffcrepl", "soft\u00adhyphen",
        "zwj\u200dzwnj\u200c", "rtl\u200fmark", "\u202ewrong way", "file\x1csep", "unit\x1fsep",
        "c1\x80\x9fchars", "\x91smart\x92", "\x96dash", "tag\U000e0041char", "\ud7ff",
        "ideo\u3000\u3000double", " \u00a0 \u2000 \u200a mixed ", "ends with space ",
    ]
    # special-token text
    t += [
        "<|startoftext|>", "<|endoftext|>", "hello <|endoftext|> world", "<|endoftext|><|endoftext|>",
        "<|ſtartoftext|>", "<|STARTOFTEXT|>", "<|startoftext", "<|endoftext||>", "<start_of_text>",
        "</w>", "a</w>b", "<|>",
    ]
    # long texts
    long1 = ("A diver performs a forward two and a half somersaults pike from the ten metre platform; "
             "the take-off is strong, the rotation is tight, the come-out is early and the entry is "
             "vertical with very little splash, which earns scores of eight and a half to nine and a "
             "half from all seven judges.")
    t += [long1, long1 * 2, "word " * 100, "supercalifragilisticexpialidocious" * 10, "a" * 300,
          "1234567890" * 10, "!?" * 100, "😀" * 40, "日本語" * 50, "it's " * 40,
          " ".join("%d.%d" % (i, i % 10) for i in range(60)), "&amp;" * 30]
    # mojibake (ftfy would repair it; aqa does not)
    t += ["cafÃ©", "â€œquoteâ€\x9d", "Ã©tÃ©", "The Mona Lisa doesnÃ¢â‚¬â„¢t have eyebrows.",
          "voilÃ  le travail", "ÃƒÂ©"]
    return t


def random_texts(rng, n):
    pool = (list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
            + list(" .,;:!?'\"-_()[]{}<>&#/\\|@$%^*+=~`") + [" ", " ", " ", "\t", "\n", "\r"]
            + list("éèêëàâäôöûüçñßøåæœÉÈÀÇÑÅ") + ["e\u0301", "\u0301", "\u0323", "\u031b", "\u0345",
                                                "\u0308", "\u0307", "\u0300"]
            + list("ΑΒΓΔΣσςαβγδάέ") + list("АБВГДабвгдё") + list("日本語中文字한국어가각")
            + ["\u1100", "\u1161", "\u11a8"] + list("😀👍🏽🇫🇷❤️\u200d\ufe0f") + list("ｆｕｌ１２ｶﾞﾟ　")
            + list("ﬁﬂﬀĳ“”‘’ʼ„") + ["&amp;", "&lt;", "&#39;", "&#x41;", "&eacute;", "&nbsp;", "&"]
            + ["'s", "'t", "'re", "'ll", "'d", "'m", "'ve", "<|endoftext|>"]
            + list("\u00a0\u2003\u3000\u200b\ufeff\x07\x1b\x7f\u2028\u0085ſK½²①٣")
            + ["dive", "pike", "tuck", "twist", "somersault", "3.5", "2½", "splash"])
    out = []
    for _ in range(n):
        k = rng.randint(1, 24)
        out.append("".join(rng.choice(pool) for _ in range(k)))
    return out


def open_clip_tokenizer(vocab_path):
    """open_clip's SimpleTokenizer (its own special-token spelling), or None."""
    for d in sys.path:
        f = os.path.join(d, "open_clip", "tokenizer.py")
        if os.path.isfile(f):
            try:
                spec = importlib.util.spec_from_file_location("open_clip_tokenizer_only", f)
                mod = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(mod)
                version = "?"
                vf = os.path.join(os.path.dirname(f), "version.py")
                if os.path.isfile(vf):
                    version = open(vf).read().split("=")[-1].strip().strip("'\"")
                return mod.SimpleTokenizer(vocab_path), "open_clip_torch " + version
            except Exception as e:  # torch or another dependency missing
                print("open_clip tokenizer not usable: %s" % e, file=sys.stderr)
                return None
    return None


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--vocab", default=os.path.join(here, "..", "..", "shared", "data", "clip",
                                                    "bpe_simple_vocab_16e6.txt.gz"))
    ap.add_argument("--out", default=os.path.join(here, "..", "tests", "data", "tokenizer"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    ids, merges = load_openai(args.vocab)
    ref = Reference(ids, merges)
    rng = random.Random(20260426)
    texts = fixed_texts() + random_texts(rng, 200)

    oc = open_clip_tokenizer(args.vocab)
    checked = 0
    rows = []
    n_moji = 0
    for text in texts:
        raw = ref.encode(text)
        t77 = ref.tokenize(text, 77)
        t8 = ref.tokenize(text, 8)
        moji = ftfy.fix_text(text) != ftfy.fix_text(text, fix_encoding=False)
        n_moji += moji
        cleaned = ref.clean(text)
        if oc is not None and "<" not in cleaned:
            assert oc[0].encode(text) == raw, "open_clip disagrees on %r" % text
            checked += 1
        while t77 and t77[-1] == 0:
            t77.pop()
        while t8 and t8[-1] == 0:
            t8.pop()
        rows.append("\t".join(["mojibake" if moji else "ok", escape(text), escape(cleaned),
                               " ".join(map(str, raw)), " ".join(map(str, t77)),
                               " ".join(map(str, t8)), escape(ref.decode(raw))]))
    versions = "python %s, ftfy %s, regex %s" % (sys.version.split()[0], ftfy.__version__,
                                                 regex.__version__)
    cross = ("cross-checked %d texts against the SimpleTokenizer of %s" % (checked, oc[1])
             if oc is not None else "open_clip not available: no cross-check")
    with open(os.path.join(args.out, "clip_golden.txt"), "w", encoding="utf-8") as f:
        f.write("# CLIP tokenizer golden ids, generated by scripts/gen_tokenizer_golden.py\n")
        f.write("# %s; %s\n" % (versions, cross))
        f.write("# kind\ttext\tcleaned\traw_ids\tids77\tids8 (trailing zeros removed)\tdecoded\n")
        for r in rows:
            f.write(r + "\n")

    # tiny Hugging Face-format vocabulary with shuffled ids
    sym, order = byte_symbols()
    tiny_merges = merges[:300]
    tokens = [sym[b] for b in order]
    tokens += [v + "</w>" for v in tokens]
    tokens += ["".join(m) for m in tiny_merges] + [SOT, EOT]
    tokens = list(dict.fromkeys(tokens))
    perm = list(range(len(tokens)))
    rng.shuffle(perm)
    tiny_ids = {tok: perm[i] for i, tok in enumerate(tokens)}
    with open(os.path.join(args.out, "tiny_vocab.json"), "w", encoding="utf-8") as f:
        json.dump(tiny_ids, f, ensure_ascii=False)
    with open(os.path.join(args.out, "tiny_merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for a, b in tiny_merges:
            f.write("%s %s\n" % (a, b))
    tiny = Reference(tiny_ids, tiny_merges)
    with open(os.path.join(args.out, "tiny_golden.txt"), "w", encoding="utf-8") as f:
        f.write("# ids of tiny_vocab.json + tiny_merges.txt, by scripts/gen_tokenizer_golden.py (%s)\n"
                % versions)
        for text in fixed_texts()[:60] + ["the theatre then there", "<|endoftext|> and <|startoftext|>"]:
            f.write("%s\t%s\n" % (escape(text), " ".join(map(str, tiny.encode(text)))))
    print("%d texts (%d mojibake); %s" % (len(rows), n_moji, cross))


if __name__ == "__main__":
    main()
