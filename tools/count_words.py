#!/usr/bin/env python3
"""Count the words of Markdown files the way a marker would, and fail above the limit.

Not counted: headings, HTML comments (the templates' guidance), code blocks, link targets,
and Markdown punctuation (emphasis, bullets, table bars). A word is a run of characters
containing at least one letter or digit.

Usage: python tools/count_words.py [--limit 300] FILE...
"""
import argparse
import re
import sys
from pathlib import Path

LIMIT = 300


def count_words(markdown):
    text = re.sub(r"<!--.*?-->", " ", markdown, flags=re.S)          # guidance comments
    text = re.sub(r"^```.*?^```", " ", text, flags=re.S | re.M)       # fenced code
    text = re.sub(r"^\s{0,3}#.*$", " ", text, flags=re.M)             # headings
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)            # [text](url) -> text
    return sum(1 for token in text.split() if re.search(r"[A-Za-z0-9]", token))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=LIMIT)
    parser.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args(argv)
    over = False
    for path in args.files:
        n = count_words(path.read_text(encoding="utf-8"))
        over |= n > args.limit
        print(f"{path}: {n} words{'  OVER THE LIMIT of %d' % args.limit if n > args.limit else ''}")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
