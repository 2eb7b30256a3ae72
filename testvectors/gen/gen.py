#!/usr/bin/python3
"""Generates every kernel family's vectors into testvectors/data/FAMILY.json.

Usage: /usr/bin/python3 testvectors/gen/gen.py [FAMILY...]
Each family module exposes cases() -> list of vectors, computed in float64.
"""
import importlib
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import common  # noqa: E402

FAMILIES = [name[:-3] for name in sorted(os.listdir(HERE))
            if name.endswith(".py") and name not in ("gen.py", "common.py")]


def main(argv):
    wanted = argv or FAMILIES
    for fam in wanted:
        mod = importlib.import_module(fam)
        common.write(os.path.join(HERE, "..", "data", fam + ".json"), mod.cases())


if __name__ == "__main__":
    main(sys.argv[1:])
