#!/usr/bin/env python3
"""Builds the tokenizer exactness corpus: varied text, generated deterministically (fixed
seed, no downloads), written as gzip JSONL (one JSON string per line).

Categories: English prose, code (Python stdlib sources), JSON, Chinese, Japanese, Korean,
Arabic, Hindi, Thai, Cyrillic, emoji (ZWJ sequences, skin tones, flags), combining accents
that NFC composes, full-width forms, long digit runs, whitespace runs (tabs, CR/LF, no-break
and other Unicode spaces), contractions in mixed case, special tokens inline and half
written, and seeded random Unicode strings.

Usage: python3 tools/tokenizer_corpus.py [--out tests/fixtures/tokenizer/corpus.jsonl.gz]
The output is byte-identical between runs for one Python version (the code category reads
this interpreter's stdlib sources; the committed file records what was used).
"""
import argparse
import gzip
import json
import os
import random
import sys
import sysconfig
import unicodedata

SEED = 20250901

EN_WORDS = """the of and to in is was for on that with as by at from his her they this have
not are but had which one were all their there been has when who will more if no out so said
what up its about than into them can only other new some could time these two may then do first
any my now such like our over man me even most made after also did many before must through back
years where much your way well down should because each just those people how too little state
good very make world still own see men work long get here between both life being under never day
same another know while last might us great old year off come since against go came right used
take three model token server engine cache memory request stream image vision language parser
quick brown fox jumps lazy dog weather river mountain city garden window kitchen teacher doctor
engineer computer network protocol function variable pointer allocate release""".split()
NAMES = ["Alice", "Bob", "Carol", "Dave", "Eve", "McDonald", "O'Brien", "iPhone", "GPT", "NASA",
         "Zürich", "São Paulo", "Dvořák", "Ångström", "naïve", "façade", "coöperate", "résumé"]
CONTRACTIONS = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'Ve", "'M", "'LL",
                "'D", "'rE", "'lL", "\u2019s", "\u2019t", "'ſ", "'x", "''s"]
ZH = ("我们 你好 世界 中国 今天 天气 很好 学习 工作 电脑 程序 语言 模型 图像 视觉 问题 答案 时间 "
      "朋友 家人 城市 北京 上海 经济 发展 科学 技术 历史 文化 音乐 电影 书籍 数据 网络 服务器 "
      "人工智能 机器学习 深度学习 自然语言 处理 我 你 他 她 的 了 是 在 有 和 不 也 就 都 要 会 可以 "
      "因为 所以 但是 如果 然后").split()
ZH_PUNCT = ["，", "。", "！", "？", "、", "：", "；", "“", "”", "（", "）", "《", "》", "…"]
JA = ("こんにちは ありがとう すみません 日本 東京 大阪 今日 明日 天気 学校 先生 学生 電車 "
      "コンピューター プログラム データ ネットワーク サーバー カタカナ ひらがな 漢字 です ます "
      "でした ません を に は が で と の から まで より こと もの ラーメン 寿司 ｶﾀｶﾅ").split()
KO = ("안녕하세요 감사합니다 한국 서울 부산 오늘 내일 날씨 학교 선생님 학생 컴퓨터 프로그램 "
      "데이터 네트워크 서버 사랑 친구 가족 음식 김치 는 은 이 가 을 를 에 에서 으로 하고 입니다 "
      "합니다 했습니다").split()
AR = ("مرحبا شكرا العالم اللغة العربية الكتاب المدرسة الطالب المعلم الحاسوب البرنامج البيانات "
      "الشبكة اليوم غدا الطقس جميل كبير صغير في من إلى على عن مع هذا هذه ذلك التي الذي").split()
HI = ("नमस्ते धन्यवाद भारत दिल्ली मुंबई आज कल मौसम स्कूल शिक्षक छात्र कंप्यूटर प्रोग्राम डेटा "
      "नेटवर्क भाषा हिन्दी है हैं था थी में से को का की के और या पर लेकिन क्योंकि").split()
TH = ("สวัสดี ขอบคุณ ประเทศไทย กรุงเทพ วันนี้ พรุ่งนี้ อากาศ โรงเรียน ครู นักเรียน คอมพิวเตอร์ "
      "โปรแกรม ข้อมูล เครือข่าย ภาษา ไทย และ หรือ ใน ที่ ของ เป็น มี ได้ ไม่").split()
RU = ("привет спасибо мир Россия Москва сегодня завтра погода школа учитель ученик компьютер "
      "программа данные сеть язык русский и или в на с по для не что это как Ёлка ЁЖ ЪЕМ "
      "Київ Україна їжак ґанок Беларусь ўсё").split()
EMOJI = ["😀", "😂", "🥲", "👍", "👍🏻", "👍🏽", "👍🏿", "❤️", "🔥", "🎉", "🚀", "🇺🇸", "🇯🇵", "🇩🇪",
         "👨‍👩‍👧‍👦", "👩‍💻", "🧑🏾‍🚀", "🏳️‍🌈", "🏴‍☠️", "👁️‍🗨️", "🤷‍♀️", "🤷🏼‍♂️", "❤️‍🔥",
         "🫶🏾", "🧔‍♀️", "✌️", "☺️", "1️⃣", "#️⃣", "©️", "™️", "🙂🙃", "💯", "🐍", "🦀"]
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>",
           "<|object_ref_end|>", "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>",
           "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>",
           "<|video_pad|>", "<tool_call>", "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>",
           "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>", "<s>", "</s>",
           "<unk>", "<pad>", "[CLS]", "<|user|>"]
SPACES = [" ", "  ", "\t", "\t\t", "\n", "\r\n", "\r", "\n\n", " \n", "\u00a0", "\u3000",
          "\u2009", "\u200b", "\u2028", "\u0085", "\u000b", "\u000c", " \t \n", "   ", "\u202f"]
COMBINING = ["\u0301", "\u0300", "\u0302", "\u0308", "\u0303", "\u030a", "\u0327", "\u0328",
             "\u030c", "\u0323", "\u0331", "\u20dd", "\u0345", "\u0342"]


def prose(r):
    out = []
    for _ in range(r.randint(1, 8)):
        words = [r.choice(EN_WORDS) for _ in range(r.randint(3, 18))]
        if r.random() < 0.4:
            words.insert(r.randrange(len(words)), r.choice(NAMES))
        if r.random() < 0.3:
            i = r.randrange(len(words))
            words[i] = words[i] + r.choice(CONTRACTIONS)
        if r.random() < 0.2:
            words.insert(r.randrange(len(words)), str(r.randint(0, 10 ** r.randint(1, 12))))
        s = " ".join(words)
        s = s[0].upper() + s[1:] + r.choice([".", "!", "?", "...", ";", ":", " -", ","])
        if r.random() < 0.1:
            s = s.upper()
        out.append(s)
    return r.choice([" ", "  ", "\n", "\n\n"]).join(out)


def words_text(r, words, punct, sep=" "):
    n = r.randint(3, 40)
    parts = []
    for _ in range(n):
        parts.append(r.choice(words))
        if r.random() < 0.15:
            parts.append(r.choice(punct))
    return sep.join(parts) if sep else "".join(parts)


def code_chunks(r):
    libdir = sysconfig.get_paths()["stdlib"]
    mods = ["json/decoder.py", "json/encoder.py", "textwrap.py", "argparse.py", "difflib.py",
            "heapq.py", "bisect.py", "string.py", "shlex.py", "fractions.py", "statistics.py",
            "colorsys.py", "glob.py", "fnmatch.py", "csv.py", "base64.py", "calendar.py"]
    out = []
    for m in mods:
        p = os.path.join(libdir, m)
        if not os.path.exists(p):
            continue
        src = open(p, encoding="utf-8").read()
        i = 0
        while i < len(src):
            n = r.randint(200, 3000)
            out.append(src[i:i + n])
            i += n
    return out


def rand_json(r, depth=0):
    k = r.random()
    if depth > 3 or k < 0.3:
        return r.choice([r.randint(-10 ** 9, 10 ** 9), r.random() * 1000, True, False, None,
                         r.choice(EN_WORDS), r.choice(ZH), r.choice(EMOJI) + "x",
                         "line\nbreak\t\"quoted\"\\"])
    if k < 0.65:
        return {r.choice(EN_WORDS) + str(i): rand_json(r, depth + 1)
                for i in range(r.randint(1, 6))}
    return [rand_json(r, depth + 1) for _ in range(r.randint(0, 6))]


def combining_text(r):
    base = "aeiouAEIOUcnsyzgCNSYZGhHwWkK"
    out = []
    for _ in range(r.randint(5, 40)):
        c = r.choice(base)
        for _ in range(r.choice([0, 1, 1, 1, 2, 3])):
            c += r.choice(COMBINING)
        out.append(c)
        if r.random() < 0.3:
            out.append(" ")
    # Hangul written as conjoining jamo (NFC composes them into syllables)
    for _ in range(r.randint(0, 5)):
        out.append(chr(0x1100 + r.randrange(19)) + chr(0x1161 + r.randrange(21)))
        if r.random() < 0.5:
            out.append(chr(0x11A8 + r.randrange(27)))
    # singletons and canonical equivalents: Angstrom sign, Ohm sign, Kelvin sign
    if r.random() < 0.5:
        out.append(r.choice(["\u212b", "\u2126", "\u212a", "\u0344", "\u0958", "\ufb1d"]))
    return "".join(out)


def fullwidth(r):
    s = "".join(chr(0xFF01 + r.randrange(94)) for _ in range(r.randint(3, 40)))
    return s + r.choice(["", " ", "ＡＢＣ１２３", "ｈｅｌｌｏ　ｗｏｒｌｄ"])


def digits(r):
    parts = []
    for _ in range(r.randint(1, 6)):
        parts.append("".join(r.choice("0123456789") for _ in range(r.randint(1, 80))))
        parts.append(r.choice([" ", ",", ".", "-", "", "e", "x", "٣٤٥", "१२३", "௧௨", "½", "²"]))
    return "".join(parts)


def spaces(r):
    out = []
    for _ in range(r.randint(2, 30)):
        out.append(r.choice(SPACES) * r.randint(1, 6))
        if r.random() < 0.6:
            out.append(r.choice(EN_WORDS + ZH + ["!", "?", "...", "x", "'s", "12"]))
    return "".join(out)


def special(r):
    out = []
    for _ in range(r.randint(2, 12)):
        k = r.random()
        t = r.choice(SPECIAL)
        if k < 0.45:
            out.append(t)
        elif k < 0.75:  # half written
            cut = r.randrange(1, len(t))
            out.append(t[:cut] if r.random() < 0.5 else t[cut:])
        else:
            out.append(r.choice(["<", "|", "<|", "|>", ">", "<<", ">>", "< |im_start| >"]))
        out.append(r.choice(["", "", " ", "\n", "user\n", "Hello", "你好", " world ", "\t"]))
    return "".join(out)


def chat(r):
    s = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    for _ in range(r.randint(1, 3)):
        s += "<|im_start|>user\n" + prose(r)
        if r.random() < 0.3:
            s += "<|vision_start|>" + "<|image_pad|>" * r.randint(1, 8) + "<|vision_end|>"
        s += "<|im_end|>\n<|im_start|>assistant\n" + prose(r) + "<|im_end|>\n"
    return s


def assigned_chars():
    cs = []
    for cp in list(range(0x20, 0x3000)) + list(range(0xA000, 0xD800)) + \
            list(range(0xF900, 0x10000)) + list(range(0x10000, 0x1FB00, 3)):
        c = chr(cp)
        if unicodedata.category(c) not in ("Cn", "Cs", "Co"):
            cs.append(c)
    return cs


def random_unicode(r, pool):
    n = r.randint(1, 60)
    s = []
    for _ in range(n):
        k = r.random()
        if k < 0.6:
            s.append(r.choice(pool))
        elif k < 0.75:
            s.append(r.choice(SPACES))
        elif k < 0.9:
            s.append(chr(r.randint(0x21, 0x7E)))
        else:
            s.append(r.choice(EMOJI + COMBINING + CONTRACTIONS))
    return "".join(s)


def build():
    r = random.Random(SEED)
    texts = []

    def add(gen, n):
        for _ in range(n):
            texts.append(gen())

    add(lambda: prose(r), 900)
    texts.extend(code_chunks(r))
    add(lambda: json.dumps(rand_json(r), ensure_ascii=r.random() < 0.3,
                           indent=r.choice([None, 2, 4, "\t"])), 300)
    add(lambda: words_text(r, ZH, ZH_PUNCT, sep=""), 600)
    add(lambda: words_text(r, JA, ZH_PUNCT, sep=""), 400)
    add(lambda: words_text(r, KO, [".", ",", "?", "!"]), 400)
    add(lambda: words_text(r, AR, ["،", "؟", ".", "!"]), 400)
    add(lambda: words_text(r, HI, ["।", ",", "?"]), 400)
    add(lambda: words_text(r, TH, [" ", "ๆ", "."], sep=""), 400)
    add(lambda: words_text(r, RU, [",", ".", "!", "—", "«", "»"]), 400)
    add(lambda: "".join(r.choice(EMOJI + [" ", "", "a", "!", "\n"]) for _ in range(r.randint(2, 40))), 400)
    add(lambda: combining_text(r), 500)
    add(lambda: fullwidth(r), 300)
    add(lambda: digits(r), 300)
    add(lambda: spaces(r), 600)
    add(lambda: special(r), 600)
    add(lambda: chat(r), 150)
    mixes = [lambda: prose(r), lambda: words_text(r, ZH, ZH_PUNCT, sep=""), lambda: spaces(r),
             lambda: digits(r), lambda: special(r), lambda: combining_text(r)]
    add(lambda: "".join(r.choice(mixes)() for _ in range(r.randint(2, 5))), 500)
    pool = assigned_chars()
    add(lambda: random_unicode(r, pool), 3000)
    # edge cases
    texts.extend(["", " ", "\n", "a", "'s", "'S", "s", "\u00a0", " \u00a0", "  ", "\t\n",
                  "\r\n\r\n", "x" * 5000, " " * 3000, "\n" * 500, "1" * 2000, "ab" * 1500,
                  "🙂" * 300, "中" * 2000, "<|im_end|>" * 50, "é" * 500, "e\u0301" * 300])
    return texts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/fixtures/tokenizer/corpus.jsonl.gz")
    a = ap.parse_args()
    texts = build()
    total = sum(len(t.encode("utf-8")) for t in texts)
    with gzip.GzipFile(a.out, "wb", mtime=0) as f:
        for t in texts:
            f.write((json.dumps(t, ensure_ascii=False) + "\n").encode("utf-8"))
    print(f"{len(texts)} strings, {total} bytes of UTF-8 -> {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
