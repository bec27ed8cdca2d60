#!/usr/bin/env python3
"""Peer benchmark: PyTorch + transformers eager (no torch.compile), SDPA attention, bf16, batch 1:
prefill a seeded --prompt-len prompt, then --new greedy decode steps with the KV cache, one host
sync per token (.item(), as a serving loop needs the id). Prints one JSON record (tok/s, ttft,
inter-token latency p50/p99, achieved GB/s of weights + KV read per decode step).
Usage: hf_decode_bench.py --model DIR [--prompt-len 128] [--new 256] [--warmup 16]"""
import argparse, json, time
import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--prompt-len", type=int, default=128)
    ap.add_argument("--new", type=int, default=256)
    ap.add_argument("--warmup", type=int, default=16)
    a = ap.parse_args()
    from transformers import AutoModelForCausalLM, DynamicCache
    model = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.bfloat16, attn_implementation="sdpa").cuda().eval()
    c = model.config
    V = c.vocab_size
    g = torch.Generator().manual_seed(1)
    prompt = torch.randint(3, min(V, 32000), (1, a.prompt_len), generator=g).cuda()

    def run(n_new):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        cache = DynamicCache()
        out = model(prompt, past_key_values=cache, use_cache=True)
        nxt = int(out.logits[0, -1].argmax())
        t1 = time.perf_counter()
        itl = []
        for _ in range(n_new - 1):
            s = time.perf_counter()
            out = model(torch.tensor([[nxt]], device="cuda"), past_key_values=cache, use_cache=True)
            nxt = int(out.logits[0, -1].argmax())
            itl.append(time.perf_counter() - s)
        return t1 - t0, itl

    with torch.no_grad():
        run(a.warmup)
        ttft, itl = run(a.new)
    n_params = sum(p.numel() for n, p in model.named_parameters() if "embed_tokens" not in n or c.tie_word_embeddings)
    head_dim = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
    avg_ctx = a.prompt_len + a.new / 2
    kv_bytes = avg_ctx * c.num_hidden_layers * 2 * c.num_key_value_heads * head_dim * 2
    step_s = sum(itl) / len(itl)
    itl_ms = sorted(x * 1000 for x in itl)
    rec = {"engine": "transformers-eager-sdpa", "torch": torch.__version__, "device": torch.cuda.get_device_name(0),
           "dtype": "bf16", "batch": 1, "inLen": a.prompt_len, "outLen": a.new, "ttftMs": ttft * 1000,
           "tokPerS": 1 / step_s, "itlP50Ms": itl_ms[len(itl_ms) // 2], "itlP99Ms": itl_ms[int(len(itl_ms) * 0.99)],
           "bytesPerStep": n_params * 2 + kv_bytes, "gbPerS": (n_params * 2 + kv_bytes) / step_s / 1e9}
    print(json.dumps(rec))


if __name__ == "__main__":
    main()
