#!/usr/bin/env python3
"""Seeded random-weight HF checkpoints for the GPU suite (runs on the GPU machine: a 7B model is
13.5 GB, too big to carry). Shapes: llama2-7b (LlamaForCausalLM, MHA 32/32, vocab 32000) and
qwen3-0.6b (Qwen3ForCausalLM, GQA 16/8, head_dim 128, q/k norm, tied, vocab 151936).
Weights: N(0, 0.02) for matrices and embeddings, with the residual-writing o_proj and down_proj scaled
by 1/sqrt(2 * layers) (GPT-2 style; plain N(0, 0.02) everywhere makes a 32-layer random net so
chaotic that PyTorch's own bf16 and f32 runs agree on only ~84% of greedy tokens), 1 + N(0, 0.1)
for norm weights, drawn on the GPU
from torch.Generator(seed) in bf16; shards of <= 2 GB (Node reads each tensor with readSync).
Even so, the 7B shape stays chaotic in top-1 (H100: PyTorch bf16 vs its own f32 82-84%, near-tied
logits), so --init well-conditioned (the same init as writeRandomModel's 'well-conditioned' in
src/model/random-model.ts): embeddings N(0, 1) (they dominate the residual stream), q/k/v/gate/up
N(0, 1/fan_in), o_proj/down_proj N(0, 1/fan_in/(2*layers)), norms 1 + N(0, 0.1), and an untied lm_head
= the embedding rolled by one row / sqrt(hidden) (row v = embed row v+1): the model leans toward
predicting x-1 after x with a top-1 margin of many bf16 ulps, while the rest of the residual stream
still moves every logit, so bf16-vs-f32 top-1 agreement >= 99% is a meaningful check (measured on
CPU for a 32-layer model: docs/kernels.md, "Well-conditioned random models"). Writes tm_gen.json
({"init": ...}) next to the checkpoint for hf-compare.gpu.test.ts.
Usage: gen_hf_model.py --shape llama2-7b --out DIR [--seed 0] [--init default|well-conditioned]"""
import argparse, json, os, time
import torch

SHAPES = {
    "llama2-7b": dict(architectures=["LlamaForCausalLM"], model_type="llama", vocab_size=32000, hidden_size=4096,
                      intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32,
                      max_position_embeddings=4096, rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False,
                      hidden_act="silu", bos_token_id=1, eos_token_id=2, torch_dtype="bfloat16", attention_bias=False),
    "qwen3-0.6b": dict(architectures=["Qwen3ForCausalLM"], model_type="qwen3", vocab_size=151936, hidden_size=1024,
                       intermediate_size=3072, num_hidden_layers=28, num_attention_heads=16, num_key_value_heads=8,
                       head_dim=128, max_position_embeddings=40960, rms_norm_eps=1e-6, rope_theta=1000000.0,
                       tie_word_embeddings=True, hidden_act="silu", bos_token_id=151643, eos_token_id=151645,
                       torch_dtype="bfloat16", attention_bias=False),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", required=True, choices=sorted(SHAPES))
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--init", choices=["default", "well-conditioned"], default="default")
    a = ap.parse_args()
    from transformers import AutoConfig, AutoModelForCausalLM
    t0 = time.time()
    cfg_dict = dict(SHAPES[a.shape])
    cfg = AutoConfig.for_model(cfg_dict.pop("model_type"), **cfg_dict)
    torch.set_default_dtype(torch.bfloat16)
    with torch.device("cuda"):
        model = AutoModelForCausalLM.from_config(cfg)
    torch.set_default_dtype(torch.float32)
    model = model.to(torch.bfloat16)
    g = torch.Generator(device="cuda").manual_seed(a.seed)
    L = cfg.num_hidden_layers
    with torch.no_grad():
        for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
            if a.init == "well-conditioned":
                if "norm" in name:
                    p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g, device="cuda", dtype=torch.float32))
                elif name.endswith("bias"):
                    p.copy_(0.1 * torch.randn(p.shape, generator=g, device="cuda", dtype=torch.float32))
                elif name == "lm_head.weight":
                    continue  # set from the embedding below (sorted order: "lm_head" < "model.")
                elif name.endswith("embed_tokens.weight"):
                    p.copy_(torch.randn(p.shape, generator=g, device="cuda", dtype=torch.float32))
                else:
                    std = p.shape[1] ** -0.5 / ((2 * L) ** 0.5 if name.endswith(("o_proj.weight", "down_proj.weight")) else 1)
                    p.copy_(std * torch.randn(p.shape, generator=g, device="cuda", dtype=torch.float32))
                continue
            if "norm" in name:
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g, device="cuda", dtype=torch.float32))
            else:
                std = 0.02 / (2 * cfg.num_hidden_layers) ** 0.5 if name.endswith(("o_proj.weight", "down_proj.weight")) else 0.02
                p.copy_(std * torch.randn(p.shape, generator=g, device="cuda", dtype=torch.float32))
        if a.init == "well-conditioned" and not cfg.tie_word_embeddings:
            emb = model.get_input_embeddings().weight
            model.lm_head.weight.copy_((torch.roll(emb.float(), shifts=-1, dims=0) / cfg.hidden_size ** 0.5).to(emb.dtype))
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "tm_gen.json"), "w") as f:
        json.dump({"shape": a.shape, "seed": a.seed, "init": a.init}, f)
    model.save_pretrained(a.out, max_shard_size="2GB", safe_serialization=True)
    with open(os.path.join(a.out, "config.json")) as f:
        saved = json.load(f)
    n = sum(p.numel() for p in model.parameters())
    print(json.dumps({"shape": a.shape, "init": a.init, "params": n, "seconds": round(time.time() - t0, 1), "architectures": saved.get("architectures")}))


if __name__ == "__main__":
    main()
