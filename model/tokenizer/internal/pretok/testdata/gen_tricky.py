#!/usr/bin/python3
"""Writes tricky.json: the pre-tokens of tricky inputs under Llama 3's ("llama-bpe") and
Qwen2's pre-tokenizer expressions, as llama.cpp's llama-vocab.cpp states them, applied with
the Python regex module (which has the look-ahead and Unicode classes Go's regexp lacks).

Run from this directory: /usr/bin/python3 gen_tricky.py (needs python3-regex).
"""
import json

import regex

CONTRACTIONS = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
EXPRESSIONS = {
    "llama3": CONTRACTIONS + r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
    "qwen2": CONTRACTIONS + r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
}

INPUTS = [
    # digits: runs of 1-3 (llama3) or single digits (qwen2), every \p{N}
    "1", "12", "123", "1234", "1234567", "3.14159", "x1y22z333w4444", "2024-11-30",
    "\uff11\uff12\uff13\uff14", "\u0663\u0664\u0665\u0666", "\u00bd\u2153 \u2167\u2168", "$1,000,000.99",
    # contractions, either case, and look-alikes that are not contractions
    "don't DON'T I'm we'll they've she'd it's", "can't've y'all rock'n'roll", "'s'S'T'Re",
    "\u2018curly\u2019 don\u2019t", "o'clock 'twas", "''quoted''",
    # letters of other scripts, combining marks, title case
    "na\u00efve caf\u00e9", "\u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac", "\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440!",
    "\u65e5\u672c\u8a9e\u30c6\u30ad\u30b9\u30c8", "\u0627\u0644\u0639\u0631\u0628\u064a\u0629", "\ud55c\uad6d\uc5b4 \ud14d\uc2a4\ud2b8",
    "e\u0301t\u00e9 cafe\u0301s", "\u01c5ungla", "emoji \U0001f44d\U0001f3fd flags \U0001f1fa\U0001f1f8!",
    # whitespace runs: the last space of a run before a word goes with the word
    "a b", "a  b", "a   b", "  leading", "trailing   ", "\t\ttabs", "line\n\nbreaks\r\n",
    " \n \n", "a \u00a0 b", "\u2003em\u2003", "x\n  y", "end \n", "  \n\n  x  ",
    # punctuation runs and what follows them
    "Hello world!!! ...", "C++ -> c# && (x)", "<|im_start|>user\nHi<|im_end|>", "a.b,c;d", "!!\n\n",
]


def main():
    out = {"inputs": INPUTS}
    for name, expr in EXPRESSIONS.items():
        r = regex.compile(expr)
        out[name] = [r.findall(s) for s in INPUTS]
    with open("tricky.json", "w") as f:
        json.dump(out, f, ensure_ascii=False, indent=0)
        f.write("\n")


if __name__ == "__main__":
    main()
