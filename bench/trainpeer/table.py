#!/usr/bin/python3
"""Results of bench/trainpeer/run.sh.

    table.py --collect engine|torch --case C --round R --threads T --warm W RUN.jsonl
        one result line (JSON) from a run's JSON lines: step and forward tok/s (median over
        the steps after the first W), the losses and gradient norms step by step
    table.py RESULTS.jsonl
        the table: medians over rounds, ratios engine/torch, and the parity of round 1
"""

import argparse
import json
import statistics
import sys


def collect(args):
    events = [json.loads(l) for l in open(args.run) if l.strip()]
    steps, fwd, losses, norms, flosses, cmp, rss = [], [], [], [], [], None, None
    csteps, cfwd = [], []
    tokens = None
    if args.collect == "engine":
        # cumulative wall seconds from finetune, cumulative CPU seconds from cpuwatch.py
        prev, cprev = 0.0, None
        for e in events:
            if e["event"] == "start":
                cprev = e.get("cpu_s")
            elif e["event"] == "step":
                steps.append(e["seconds"] - prev)
                if cprev is not None:
                    csteps.append(e["cpu_s"] - cprev)
                losses.append(e["loss"])
                norms.append(e["grad_norm"])
                prev, cprev = e["seconds"], e.get("cpu_s")
            elif e["event"] == "eval":
                fwd.append(e["seconds"] - prev)
                if cprev is not None:
                    cfwd.append(e["cpu_s"] - cprev)
                flosses.append(e["eval_loss"])
                prev, cprev = e["seconds"], e.get("cpu_s")
        # tokens per sequence: finetune's step events do not carry it; tok_per_s * seconds does
        first = next(e for e in events if e["event"] == "step")
        tokens = round(first["tok_per_s"] * first["seconds"])
    else:
        for e in events:
            if e["event"] == "start":
                tokens = e["tokens"]
            elif e["event"] == "step":
                steps.append(e["seconds"])
                csteps.append(e["cpu_s"])
                losses.append(e["loss"])
                norms.append(e["grad_norm"])
            elif e["event"] == "forward":
                fwd.append(e["seconds"])
                cfwd.append(e["cpu_s"])
                flosses.append(e["loss"])
            elif e["event"] == "done":
                rss = e["max_rss_mib"]
            elif e["event"] == "compare":
                cmp = {"worst_rel_value": e["worst_rel_value"], "worst_rel_update": e["worst_rel_update"]}
    if not steps:
        sys.exit(f"table.py: {args.run} has no step events")
    timed = lambda xs: xs[args.warm:] if len(xs) > args.warm else xs  # noqa: E731
    out = {"case": args.case, "engine": args.collect, "threads": args.threads, "round": args.round,
           "step_tok_s": tokens / statistics.median(timed(steps)),
           "forward_tok_s": tokens / statistics.median(timed(fwd)) if fwd else None,
           "step_tok_cpu_s": tokens / statistics.median(timed(csteps)) if csteps else None,
           "forward_tok_cpu_s": tokens / statistics.median(timed(cfwd)) if cfwd else None,
           "loss": losses, "grad_norm": norms, "forward_loss": flosses}
    if cmp:
        out["compare"] = cmp
    if rss:
        out["max_rss_mib"] = rss
    print(json.dumps(out))


def name(r):
    return "freqkv (lavapipe)" if r["engine"] == "engine" else f"torch {r['threads']} thread{'s' if r['threads'] > 1 else ''}"


def table(path):
    rows = [json.loads(l) for l in open(path) if l.strip()]
    cases = list(dict.fromkeys(r["case"] for r in rows))
    med = lambda xs: statistics.median(xs) if xs else float("nan")  # noqa: E731
    print(f"{'':<20} {'':<18} {'wall clock: tokens/s':^31}   {'tokens per CPU-second':^20}   {'freqkv / this':^23}")
    print(f"{'model / cache':<20} {'engine':<18} {'step':>9} {'forward':>9} {'step/fwd':>9}   {'step':>9} {'forward':>9}   "
          f"{'wall':>11} {'CPU':>11}  runs")
    for c in cases:
        groups = {}
        for r in rows:
            if r["case"] == c:
                groups.setdefault((r["engine"], r["threads"]), []).append(r)
        stat = lambda g, k: med([r[k] for r in g if r.get(k)])  # noqa: E731
        base = groups.get(("engine", 0))
        for key in sorted(groups, key=lambda k: (k[0] != "engine", k[1])):
            g = groups[key]
            s, f = stat(g, "step_tok_s"), stat(g, "forward_tok_s")
            cs, cf = stat(g, "step_tok_cpu_s"), stat(g, "forward_tok_cpu_s")
            ratio = ""
            if key[0] != "engine" and base:
                ratio = (f"{stat(base, 'step_tok_s') / s:5.2f}x {stat(base, 'forward_tok_s') / f:4.2f}x "
                         f"{stat(base, 'step_tok_cpu_s') / cs:5.2f}x {stat(base, 'forward_tok_cpu_s') / cf:4.2f}x")
            print(f"{c:<20} {name(g[0]):<18} {s:>9.1f} {f:>9.1f} {f / s:>8.1f}x   {cs:>9.1f} {cf:>9.1f}   {ratio:<23}  {len(g)}")
    print("(freqkv / this: step and forward, by wall clock, then per CPU-second)")
    print("medians over each row's runs (interleaved rounds)")
    print("parity, round 1 (loss of each step, the forward after the last, gradient norm; trained tensors after the last step):")
    for c in cases:
        e = next((r for r in rows if r["case"] == c and r["engine"] == "engine" and r["round"] == 1), None)
        t = next((r for r in rows if r["case"] == c and r["engine"] == "torch" and r["round"] == 1 and "compare" in r), None)
        t = t or next((r for r in rows if r["case"] == c and r["engine"] == "torch" and r["round"] == 1), None)
        if not e or not t:
            continue
        dl = max(abs(a - b) for a, b in zip(e["loss"] + e["forward_loss"][-1:], t["loss"] + t["forward_loss"][-1:]))
        dn = max(abs(a - b) / abs(b) for a, b in zip(e["grad_norm"], t["grad_norm"]))
        line = (f"  {c}: loss step 1 freqkv {e['loss'][0]:.6f} torch {t['loss'][0]:.6f}; after {len(e['loss'])} step(s) "
                f"{e['forward_loss'][-1]:.6f} / {t['forward_loss'][-1]:.6f}; max |dloss| {dl:.1e}, grad norm rel {dn:.1e}")
        if "compare" in t:
            line += f"; tensors rel {t['compare']['worst_rel_value']:.1e} (updates {t['compare']['worst_rel_update']:.1e})"
        print(line)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--collect", choices=("engine", "torch"))
    ap.add_argument("--case")
    ap.add_argument("--round", type=int)
    ap.add_argument("--threads", type=int)
    ap.add_argument("--warm", type=int, default=1)
    ap.add_argument("run")
    args = ap.parse_args()
    if args.collect:
        collect(args)
    else:
        table(args.run)


if __name__ == "__main__":
    main()
