#!/usr/bin/env python3
"""GPU peer for `tokenmill bench engine`: PyTorch + transformers on the same safetensors, in two modes
   eager    SDPA attention, bf16, dynamic KV cache (what most people run)
   compile  static KV cache + torch.compile(mode="reduce-overhead") (CUDA graphs; gpt-fast style)
Static batching: each concurrency level runs batches of `concurrency` seeded random-token prompts of
exactly --in tokens and generates exactly --out tokens (min_new_tokens = max_new_tokens, greedy), with a
streamer stamping every decode step. Prints one JSON line per (mode, shape, concurrency) in the
tokenmill bench record shape (schema tokenmill.bench/1). Cost, GB/s and % of peak are left null:
bench/peers/transformers.ts fills them through src/metrics/cost.ts (the only cost formula).
Usage: transformers_peer.py --model DIR [--modes eager,compile] [--shapes 128/128] [--concurrency 1,8,32]
                            [--reps 3] [--seed 1] [--requests-per-point N]
(The CUDA suite's bench/peers/hf_decode_bench.py stays the batch-1 eager decode check it was.)"""
import argparse, json, math, random, subprocess, threading, time
from datetime import datetime, timezone


def pct(sorted_xs, p):
    """Linear interpolation between closest ranks (numpy 'linear'), as src/metrics/bench/percentiles.ts."""
    if not sorted_xs:
        return None
    rank = p / 100 * (len(sorted_xs) - 1)
    lo, hi = math.floor(rank), math.ceil(rank)
    return sorted_xs[lo] + (sorted_xs[hi] - sorted_xs[lo]) * (rank - lo)


def dist(xs):
    s = sorted(xs)
    return {"p50": pct(s, 50), "p90": pct(s, 90), "p99": pct(s, 99), "mean": (sum(s) / len(s)) if s else None,
            "min": s[0] if s else None, "max": s[-1] if s else None, "count": len(s)}


class PowerSampler:
    """Mean nvidia-smi power.draw (W) while running; None when unavailable."""
    def __init__(self):
        self.samples, self.proc, self.thread = [], None, None

    def start(self):
        try:
            self.proc = subprocess.Popen(["nvidia-smi", "--query-gpu=power.draw", "--format=csv,noheader,nounits", "-lms", "100", "-i", "0"],
                                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        except OSError:
            return self
        def read():
            for line in self.proc.stdout:
                try:
                    self.samples.append(float(line.strip()))
                except ValueError:
                    pass
        self.thread = threading.Thread(target=read, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        if self.proc is not None:
            self.proc.terminate()
        return (sum(self.samples) / len(self.samples)) if self.samples else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--model-name", default=None)
    ap.add_argument("--modes", default="eager,compile")
    ap.add_argument("--shapes", default="128/128")
    ap.add_argument("--concurrency", default="1,8,32")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--requests-per-point", type=int, default=0, help="default: max(4, 2 x concurrency), in batches of concurrency")
    a = ap.parse_args()
    import torch
    import transformers
    from transformers import AutoModelForCausalLM
    from transformers.generation.streamers import BaseStreamer

    class StepClock(BaseStreamer):
        """put() is called once with the prompt, then once per generated step."""
        def __init__(self):
            self.stamps, self.first = [], True
        def put(self, value):
            if self.first:
                self.first = False
                return
            torch.cuda.synchronize()
            self.stamps.append(time.perf_counter())
        def end(self):
            pass

    shapes = [tuple(int(x) for x in s.split("/")) for s in a.shapes.split(",")]
    concs = [int(c) for c in a.concurrency.split(",")]
    dev_name = torch.cuda.get_device_name(0)
    for mode in a.modes.split(","):
        model = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.bfloat16, attn_implementation="sdpa").cuda().eval()
        if mode == "compile":
            model.generation_config.cache_implementation = "static"
            model.forward = torch.compile(model.forward, mode="reduce-overhead", fullgraph=True)
        vocab = model.config.vocab_size
        engine = "transformers-eager-sdpa" if mode == "eager" else "transformers-static-compile"
        for (in_len, out_len) in shapes:
            for c in concs:
                n = a.requests_per_point or max(4, 2 * c)
                n_batches = max(1, math.ceil(n / c))
                n = n_batches * c

                def batch(seed):
                    g = torch.Generator().manual_seed(seed)
                    ids = torch.randint(3, vocab, (c, in_len), generator=g).cuda()
                    return ids, torch.ones_like(ids)

                def run(seed):
                    ids, mask = batch(seed)
                    clock = StepClock()
                    torch.cuda.synchronize()
                    t0 = time.perf_counter()
                    with torch.no_grad():
                        out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=out_len, min_new_tokens=out_len,
                                             do_sample=False, streamer=clock, pad_token_id=0)
                    torch.cuda.synchronize()
                    t1 = time.perf_counter()
                    gen = (out.shape[1] - in_len) * c
                    st = clock.stamps
                    ttft = (st[0] - t0) * 1000 if st else None
                    itl = [(st[i] - st[i - 1]) * 1000 for i in range(1, len(st))]
                    return t1 - t0, gen, ttft, itl

                for w in range(2 if mode == "compile" else 1):  # warm-up (compile: capture + replay)
                    run(a.seed + 10_000 + w)
                runs, ttfts, itls, e2es, walls, gens = [], [], [], [], [], []
                power = PowerSampler().start()
                for r in range(a.reps):
                    wall, gen = 0.0, 0
                    for b in range(n_batches):
                        dt, g_, ttft, itl = run(a.seed + r * 1000 + b)
                        wall += dt
                        gen += g_
                        if ttft is not None:
                            ttfts += [ttft] * c  # every request in the batch sees the batch's first token
                        itls += itl
                        e2es += [dt * 1000] * c
                    runs.append(gen / wall)
                    walls.append(wall)
                    gens.append(gen)
                avg_w = power.stop()
                order = sorted(range(len(runs)), key=lambda i: runs[i])
                mid = order[(len(order) - 1) // 2]
                rec = {
                    "schema": "tokenmill.bench/1", "kind": "peer", "engine": engine,
                    "engineVersion": f"transformers {transformers.__version__}, torch {torch.__version__}",
                    "date": datetime.now(timezone.utc).isoformat(), "commit": "unknown", "dirty": None,
                    "deviceKind": "cuda", "device": dev_name, "numThreads": None, "model": a.model_name or a.model, "dtype": "bf16",
                    "inLen": in_len, "outLen": out_len, "concurrency": c, "requestRate": None, "numRequests": n, "numOk": n,
                    "wallS": walls[mid], "promptTokens": n * in_len, "generatedTokens": gens[mid], "tokPerS": runs[mid],
                    "tokPerSSpread": {"median": pct(sorted(runs), 50), "min": min(runs), "max": max(runs), "runs": runs},
                    "ttftMs": dist(ttfts), "itlMs": dist(itls), "e2eMs": dist(e2es), "goodput": None, "errors": {"total": 0, "byClass": {}},
                    "bytesPerDecodeStep": None, "gbPerS": None, "peakGbPerS": None, "peakSource": None, "pctPeak": None,
                    "usdPerHour": 0, "usdPer1kTok": None, "usdPer1MTok": None, "avgPowerW": avg_w, "joulesPerTok": None,
                    "fingerprint": None, "command": "python3 bench/peers/transformers_peer.py " + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(a).items() if v),
                    "notes": [f"static batches of {c}; ITL = decode step intervals (streamer, synchronized)", "cost/GB/s filled by bench/peers/transformers.ts via cost.ts"],
                    "decodeStepsPerS": (1000 / pct(sorted(itls), 50)) if itls else None,
                }
                print(json.dumps(rec), flush=True)
        del model
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
