#!/usr/bin/env python3
"""Deterministic scoring input for a testdata H2O-3 MOJO (for bench/score.sh).

    python3 bench/gen_score_input.py testdata/h2o3/gbm_binomial.zip OUT.csv [--rows 200000]

The header is the model's input columns in the order of ``testdata/h2o3/<name>.input.csv``
(the MOJO's ``[columns]`` without the response). Values follow the distributions the
testdata models were trained on (testdata/h2o3/README.md): ``x1`` normal(0, 1) with
~10 % missing, ``x2`` uniform 0-10 with ~5 % missing, ``x3`` a Poisson(3) count, and
``color`` a level of the MOJO's domain with ~8 % missing and ~0.5 % levels never seen in
training. Any other column is drawn uniformly over the range of the testdata input
(numeric) or from the MOJO's domain (categorical), with ~5 % missing. Numbers have at
most three decimals. The seed is fixed, so the same arguments give the same bytes.
Standard library only.
"""

import argparse
import csv
import math
import os
import random
import zipfile


def read_domains(zpath):
    """Column name -> domain levels, for the categorical columns of the MOJO."""
    with zipfile.ZipFile(zpath) as z:
        text = z.read("model.ini").decode("utf-8")
        section, columns, domains = None, [], {}
        for line in text.splitlines():
            line = line.strip()
            if line in ("[info]", "[columns]", "[domains]"):
                section = line
                continue
            if not line:
                continue
            if section == "[columns]":
                columns.append(line)
            elif section == "[domains]":
                col, rest = line.split(":", 1)
                n, f = rest.strip().split(" ", 1)
                levels = z.read("domains/" + f.strip()).decode("utf-8").splitlines()[: int(n)]
                domains[columns[int(col)]] = [l[1:-1] if l.startswith('"') else l for l in levels]
    return domains


def poisson(rng, lam):
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mojo")
    ap.add_argument("out")
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=20240)
    args = ap.parse_args()
    sample = os.path.splitext(args.mojo)[0] + ".input.csv"
    with open(sample, newline="") as f:
        sample_rows = list(csv.reader(f))
    header = sample_rows[0]
    domains = read_domains(args.mojo)
    ranges = {}
    for i, col in enumerate(header):
        vals = []
        for r in sample_rows[1:]:
            try:
                vals.append(float(r[i]))
            except (ValueError, IndexError):
                pass
        ranges[col] = (min(vals), max(vals)) if vals else (0.0, 1.0)
    rng = random.Random(args.seed)

    def value(col):
        if col in domains:
            u = rng.random()
            if u < 0.08:
                return ""
            if u < 0.085:
                return "never_seen_level"
            return rng.choice(domains[col])
        if col == "x1":
            return "" if rng.random() < 0.10 else "%.3f" % rng.gauss(0.0, 1.0)
        if col == "x2":
            return "" if rng.random() < 0.05 else "%.3f" % rng.uniform(0.0, 10.0)
        if col == "x3":
            return "%.1f" % poisson(rng, 3.0)
        if rng.random() < 0.05:
            return ""
        lo, hi = ranges[col]
        return "%.3f" % rng.uniform(lo, hi)

    with open(args.out, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        for _ in range(args.rows):
            w.writerow([value(c) for c in header])


if __name__ == "__main__":
    main()
