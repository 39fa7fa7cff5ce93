#!/usr/bin/env python3
"""Counts word frequencies in a text file and writes the most frequent words.

The example job of contrib/examples/demo.sh: slow enough (it sleeps to stand
in for real work) that replaying its result is worth it.

usage: python3 wordfreq.py CORPUS [OUTPUT] [N]
    CORPUS  text file to read
    OUTPUT  where to write the top words (default: top.txt)
    N       how many words (default: 20)
"""
import collections
import re
import sys
import time


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    corpus = argv[1]
    output = argv[2] if len(argv) > 2 else "top.txt"
    n = int(argv[3]) if len(argv) > 3 else 20

    with open(corpus, encoding="utf-8") as f:
        words = re.findall(r"[a-z']+", f.read().lower())
    counts = collections.Counter(words)

    time.sleep(1.5)  # stands in for expensive work

    with open(output, "w", encoding="utf-8") as f:
        for word, count in counts.most_common(n):
            f.write(f"{count:8d} {word}\n")
    print(f"{len(words)} words, {len(counts)} distinct; top {n} written to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
