#!/usr/bin/env python3
"""Seeded random-weight HF checkpoints for the GPU suite (runs on the GPU machine: a 7B model is
13.5 GB, too big to carry). Shapes: llama2-7b (LlamaForCausalLM, MHA 32/32, vocab 32000) and
qwen3-0.6b (Qwen3ForCausalLM, GQA 16/8, head_dim 128, q/k norm, tied, vocab 151936).
Weights: N(0, 0.02) for matrices and embeddings, with the residual-writing o_proj and down_proj scaled
by 1/sqrt(2 * layers) (GPT-2 style; plain N(0, 0.02) everywhere makes a 32-layer random net so
chaotic that PyTorch's own bf16 and f32 runs agree on only ~84% of greedy tokens), 1 + N(0, 0.1)
for norm weights, drawn on the GPU
from torch.Generator(seed) in bf16; shards of <= 2 GB (Node reads each tensor with readSync).
Usage: gen_hf_model.py --shape llama2-7b --out DIR [--seed 0]"""
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
    with torch.no_grad():
        for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
            if "norm" in name:
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g, device="cuda", dtype=torch.float32))
            else:
                std = 0.02 / (2 * cfg.num_hidden_layers) ** 0.5 if name.endswith(("o_proj.weight", "down_proj.weight")) else 0.02
                p.copy_(std * torch.randn(p.shape, generator=g, device="cuda", dtype=torch.float32))
    os.makedirs(a.out, exist_ok=True)
    model.save_pretrained(a.out, max_shard_size="2GB", safe_serialization=True)
    with open(os.path.join(a.out, "config.json")) as f:
        saved = json.load(f)
    n = sum(p.numel() for p in model.parameters())
    print(json.dumps({"shape": a.shape, "params": n, "seconds": round(time.time() - t0, 1), "architectures": saved.get("architectures")}))


if __name__ == "__main__":
    main()
