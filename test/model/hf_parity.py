# HF parity: our reference-backend logits (written by scripts/gen-hf-parity.ts) vs PyTorch +
# transformers on the same seeded random checkpoints, f32 eager attention. Needs torch and
# transformers (the GPU machines have them); not part of npm test.
#   python3 test/model/hf_parity.py .gpu/hf-check   -> exits 1 if any model is off
import json, sys, numpy as np, torch, transformers
from transformers import AutoModelForCausalLM
print('transformers', transformers.__version__, 'torch', torch.__version__)
root = sys.argv[1]
ok = True
for case in json.load(open(f'{root}/manifest.json')):
    d = f"{root}/{case['name']}"
    try:
        m = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32, attn_implementation='eager')
    except TypeError:
        m = AutoModelForCausalLM.from_pretrained(d, torch_dtype=torch.float32, attn_implementation='eager')
    m.eval()
    ids = torch.tensor([case['tokens']])
    with torch.no_grad():
        hf = m(ids).logits[0].double().numpy()
    ours = np.fromfile(f'{d}/ours.f32', dtype=np.float32).reshape(hf.shape).astype(np.float64)
    err = np.abs(hf - ours)
    tol = 1e-4 + 1e-4 * np.abs(hf)
    agree = (hf.argmax(-1) == ours.argmax(-1)).mean()
    good = bool((err <= tol).all())
    ok &= good
    print(f"{case['name']:28s} {type(m).__name__:22s} max|err| {err.max():.3e} worst/tol {(err/tol).max():.3f} argmax agree {agree:.3f} max|logit| {np.abs(hf).max():.2f} {'OK' if good else 'FAIL'}")
print('ALL OK' if ok else 'SOME FAILED')
sys.exit(0 if ok else 1)
