#!/usr/bin/env python3
"""Compares a toml-test decoder's output with the expected tagged JSON.

Usage: toml-test.py DECODER TOMLTEST_DIR. Prints TAP, exits 1 on any failure.
Values are compared the way toml-test does: same structure and types, floats
numerically (nan equals nan), date/times after normalizing the separator,
the case of T/Z and the precision of fractional seconds.
"""
import json
import math
import os
import re
import subprocess
import sys


def norm_float(s):
    s = s.strip().lower()
    if s in ("nan", "+nan", "-nan"):
        return "nan"
    if s in ("inf", "+inf"):
        return math.inf
    if s == "-inf":
        return -math.inf
    return float(s)


DT_RE = re.compile(r"^(\d{4}-\d{2}-\d{2})?[Tt ]?(\d{2}:\d{2}:\d{2})?(\.\d+)?([Zz]|[+-]\d{2}:\d{2})?$")


def norm_datetime(s):
    m = DT_RE.match(s)
    if not m:
        return s
    date, time, frac, off = m.groups()
    out = date or ""
    if date and time:
        out += "T"
    out += time or ""
    if frac:
        # .6 == .600 == .600000000
        frac = frac[1:10].ljust(9, "0").rstrip("0")
        if frac:
            out += "." + frac
    if off:
        out += "+00:00" if off in ("Z", "z", "-00:00") else off
    return out


def is_leaf(v):
    return (isinstance(v, dict) and set(v) == {"type", "value"}
            and isinstance(v["type"], str) and isinstance(v["value"], str))


def compare(want, got, path):
    """Returns None if equal, else a description of the first difference."""
    where = path or "<root>"
    if is_leaf(want):
        if not is_leaf(got):
            return "%s: want a %s value, got %s" % (where, want["type"], json.dumps(got)[:80])
        if want["type"] != got["type"]:
            return "%s: want type %s, got %s" % (where, want["type"], got["type"])
        t, a, b = want["type"], want["value"], got["value"]
        try:
            if t == "float":
                eq = norm_float(a) == norm_float(b)
            elif t == "integer":
                eq = int(a) == int(b)
            elif t.startswith(("datetime", "date", "time")):
                eq = norm_datetime(a) == norm_datetime(b)
            else:
                eq = a == b
        except ValueError:
            eq = False
        if not eq:
            return "%s: want %s %r, got %r" % (where, t, a, b)
        return None
    if isinstance(want, dict):
        if not isinstance(got, dict) or is_leaf(got):
            return "%s: want a table, got %s" % (where, json.dumps(got)[:80])
        if set(want) != set(got):
            missing = sorted(set(want) - set(got))
            extra = sorted(set(got) - set(want))
            return "%s: keys differ (missing %s, unexpected %s)" % (where, missing, extra)
        for k in want:
            r = compare(want[k], got[k], path + "." + k if path else k)
            if r:
                return r
        return None
    if isinstance(want, list):
        if not isinstance(got, list):
            return "%s: want an array, got %s" % (where, json.dumps(got)[:80])
        if len(want) != len(got):
            return "%s: want %d elements, got %d" % (where, len(want), len(got))
        for i, (a, b) in enumerate(zip(want, got)):
            r = compare(a, b, "%s[%d]" % (path, i))
            if r:
                return r
        return None
    return "%s: unexpected expected-JSON value %r" % (where, want)


def run(decoder, path):
    with open(path, "rb") as f:
        p = subprocess.run([decoder], stdin=f, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=20)
    return p.returncode, p.stdout, p.stderr


def check(decoder, root, case):
    """Returns None on success, else the reason."""
    path = os.path.join(root, case)
    try:
        rc, out, err = run(decoder, path)
    except subprocess.TimeoutExpired:
        return "timed out"
    if rc < 0 or rc > 125:
        return "decoder crashed (status %d): %s" % (rc, err.decode(errors="replace").strip())
    if case.startswith("invalid/"):
        if rc == 0:
            return "accepted invalid input: " + out.decode(errors="replace").strip()[:200]
        return None
    if rc != 0:
        return "rejected valid input: " + err.decode(errors="replace").strip()
    try:
        got = json.loads(out)
    except ValueError as e:
        return "decoder printed invalid JSON: %s" % e
    with open(path[:-len(".toml")] + ".json", encoding="utf-8") as f:
        want = json.load(f)
    return compare(want, got, "")


def main():
    if len(sys.argv) != 3:
        sys.stderr.write("usage: toml-test.py DECODER TOMLTEST_DIR\n")
        return 2
    decoder, root = os.path.abspath(sys.argv[1]), sys.argv[2]
    if not os.access(decoder, os.X_OK):
        print("1..0 # SKIP decoder %s not found" % sys.argv[1])
        return 1
    with open(os.path.join(root, "files-toml-1.0.0")) as f:
        cases = [l.strip() for l in f if l.strip().endswith(".toml")]
    print("1..%d" % len(cases))
    failed = 0
    for n, case in enumerate(cases, 1):
        name = case[:-len(".toml")]
        why = check(decoder, root, case)
        if why is None:
            print("ok %d - %s" % (n, name))
        else:
            failed += 1
            print("not ok %d - %s" % (n, name))
            for line in why.splitlines()[:5]:
                print("# " + line)
    if failed:
        print("# %d of %d failed" % (failed, len(cases)))
    sys.stdout.flush()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
