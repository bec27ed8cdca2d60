#!/usr/bin/env python3
"""Peer benchmark, batch 1, bf16: PyTorch + transformers on the same safetensors as tokenmill.
  --mode eager    SDPA attention, DynamicCache, a plain Python decode loop (what most people run)
  --mode compile  StaticCache + torch.compile(mode="reduce-overhead") on the decode step (CUDA graphs,
                  gpt-fast style); the compile/capture happens in the warm-up, outside the timing
Prefill a seeded --prompt-len prompt, then --new greedy steps; the next token stays on the device and
one .item() per step hands the id to the host (a serving loop needs it). Timing is fair to the peer:
weights loaded straight to the GPU and checked to be bf16, inference_mode, Python GC paused while
timing, logits only for the last position, --reps timed runs (median reported). Diagnostics show
whether a slow figure is the peer or the machine: GPU time per step (CUDA events) next to wall time
(their gap is host overhead), other processes on the GPU, CPU model / load.
Prints one JSON record. Usage: hf_decode_bench.py --model DIR [--mode eager|compile] [--prompt-len 128]
  [--new 256] [--warmup 16] [--reps 3] [--profile] (torch.profiler table of 8 decode steps -> stderr)"""
import argparse, gc, inspect, json, os, statistics, subprocess, sys, time
import torch


def gpu_apps():
    try:
        r = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,process_name,used_memory", "--format=csv,noheader"],
                           capture_output=True, text=True, timeout=10)
        return [l.strip() for l in r.stdout.splitlines() if l.strip() and str(os.getpid()) not in l]
    except Exception as e:  # noqa: BLE001
        return [f"unavailable: {e}"]


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def load(model_dir):
    from transformers import AutoModelForCausalLM
    kw = dict(attn_implementation="sdpa", device_map="cuda")
    try:
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16, **kw)
    except TypeError:  # transformers < 4.56 names it torch_dtype
        model = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.bfloat16, **kw)
    model = model.eval()
    dtypes = {str(p.dtype) for p in model.parameters()}
    if dtypes != {"torch.bfloat16"}:  # an ignored dtype kwarg would silently bench f32
        model = model.to(torch.bfloat16)
    return model, sorted(dtypes)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--mode", choices=["eager", "compile"], default="eager")
    ap.add_argument("--prompt-len", type=int, default=128)
    ap.add_argument("--new", type=int, default=256)
    ap.add_argument("--warmup", type=int, default=16)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--profile", action="store_true")
    a = ap.parse_args()
    import transformers
    from transformers import DynamicCache
    apps_before = gpu_apps()
    model, loaded_dtypes = load(a.model)
    c = model.config
    V = c.vocab_size
    g = torch.Generator().manual_seed(1)
    prompt = torch.randint(3, min(V, 32000), (1, a.prompt_len), generator=g).cuda()
    max_len = a.prompt_len + max(a.new, a.warmup) + 16

    if a.mode == "compile":
        from transformers import StaticCache
        def new_cache():
            for kw in (dict(config=c, max_cache_len=max_len), dict(config=c, max_batch_size=1, max_cache_len=max_len, device="cuda", dtype=torch.bfloat16)):
                try:
                    return StaticCache(**kw)
                except TypeError:
                    continue
            raise RuntimeError("StaticCache: no known constructor signature")
        step_fn = torch.compile(model.forward, mode="reduce-overhead", fullgraph=True)
    else:
        new_cache = DynamicCache
        step_fn = model.forward

    # Only the last position's logits (logits_to_keep, formerly num_logits_to_keep) where supported.
    params = inspect.signature(model.forward).parameters
    last = {"logits_to_keep": 1} if "logits_to_keep" in params else {"num_logits_to_keep": 1} if "num_logits_to_keep" in params else {}
    notes = []

    def run(n_new):
        cache = new_cache()
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        pos = torch.arange(a.prompt_len, device="cuda")
        out = model(prompt, past_key_values=cache, use_cache=True, cache_position=pos, **last)
        nxt = out.logits[:, -1:].argmax(-1)  # [1, 1] on the device
        tok = nxt.item()
        t1 = time.perf_counter()
        itl, gpu = [], []
        cur = torch.tensor([a.prompt_len], device="cuda")
        for _ in range(n_new - 1):
            ev0, ev1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s = time.perf_counter()
            ev0.record()
            out = step_fn(input_ids=nxt, past_key_values=cache, use_cache=True, cache_position=cur, position_ids=cur.unsqueeze(0), **last)
            nxt = out.logits[:, -1:].argmax(-1).clone()  # clone: a graph replay reuses its output buffer
            ev1.record()
            tok = nxt.item()
            itl.append(time.perf_counter() - s)
            gpu.append((ev0, ev1))
            cur += 1
        torch.cuda.synchronize()
        del tok
        return t1 - t0, itl, [e0.elapsed_time(e1) for e0, e1 in gpu]

    with torch.inference_mode():
        t_warm = time.perf_counter()
        try:
            for _ in range(2 if a.mode == "compile" else 1):
                run(a.warmup)
        except Exception as e:  # noqa: BLE001 - some versions break fullgraph; say so and go on
            if a.mode != "compile":
                raise
            notes.append(f"fullgraph=True failed ({type(e).__name__}: {str(e)[:200]}); fullgraph=False used")
            torch._dynamo.reset()
            step_fn = torch.compile(model.forward, mode="reduce-overhead", fullgraph=False)
            for _ in range(2):
                run(a.warmup)
        warm_s = time.perf_counter() - t_warm
        reps = []
        for _ in range(a.reps):
            gc.collect()
            gc.disable()
            try:
                reps.append(run(a.new))
            finally:
                gc.enable()
        if a.profile:  # where the host time goes, for the log (not part of the timing)
            from torch.profiler import ProfilerActivity, profile
            with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
                run(8)
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25), file=sys.stderr)
    by_speed = sorted(reps, key=lambda r: sum(r[1]))
    ttft, itl, gpu_ms = by_speed[len(by_speed) // 2]
    n_params = sum(p.numel() for n, p in model.named_parameters() if "embed_tokens" not in n or c.tie_word_embeddings)
    head_dim = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
    avg_ctx = a.prompt_len + a.new / 2
    kv_bytes = avg_ctx * c.num_hidden_layers * 2 * c.num_key_value_heads * head_dim * 2
    step_s = sum(itl) / len(itl)
    itl_ms = sorted(x * 1000 for x in itl)
    rec = {"engine": "transformers-eager-sdpa" if a.mode == "eager" else "transformers-static-compile",
           "torch": torch.__version__, "transformers": transformers.__version__, "device": torch.cuda.get_device_name(0),
           "dtype": "bf16", "loadedParamDtypes": loaded_dtypes, "batch": 1, "inLen": a.prompt_len, "outLen": a.new, "ttftMs": ttft * 1000,
           "tokPerS": 1 / step_s, "itlP50Ms": itl_ms[len(itl_ms) // 2], "itlP99Ms": itl_ms[int(len(itl_ms) * 0.99)],
           "tokPerSReps": [len(r[1]) / sum(r[1]) for r in reps],
           "gpuMsPerStepP50": statistics.median(gpu_ms), "hostOverheadMsP50": itl_ms[len(itl_ms) // 2] - statistics.median(gpu_ms),
           "notes": notes, "bytesPerStep": n_params * 2 + kv_bytes, "gbPerS": (n_params * 2 + kv_bytes) / step_s / 1e9, "warmupS": warm_s,
           "env": {"cpu": cpu_model(), "cpuCount": os.cpu_count(), "loadavg": os.getloadavg(), "torchThreads": torch.get_num_threads(),
                   "gpuAppsBefore": apps_before, "gpuAppsAfter": gpu_apps()}}
    print(json.dumps(rec))


if __name__ == "__main__":
    main()
