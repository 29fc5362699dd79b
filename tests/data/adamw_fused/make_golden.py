"""Writes golden.safetensors: torch.optim.AdamW(fused=True) on fixed gradients, the reference the
C++ AdamW (fused and reference paths) is checked against in tests/train/optim_test.cpp.

Five float32 tensors of mixed shapes; those with more than one dimension are weight-decayed
(0.1), the 1-D ones are not; 6 steps with the learning rate changing every step. Stored: each
tensor's start value `p{i}.init`, the gradient of each step `p{i}.grad{s}`, the value after each
step `p{i}.after{s}`, and `lrs`. Run: python make_golden.py (from this directory)."""
import torch
from safetensors.torch import save_file

torch.manual_seed(0)
shapes = [(7, 5), (3,), (2, 3, 4), (1,), (12, 1)]
steps = 6
lrs = [1e-2 * (s + 1) / steps for s in range(steps)]
params = [torch.randn(shape) for shape in shapes]
out = {f"p{i}.init": p.clone() for i, p in enumerate(params)}
params = [p.clone().requires_grad_() for p in params]
groups = [
    {"params": [p for p in params if p.dim() > 1], "weight_decay": 0.1},
    {"params": [p for p in params if p.dim() == 1], "weight_decay": 0.0},
]
optimizer = torch.optim.AdamW(groups, lr=lrs[0], betas=(0.9, 0.999), eps=1e-8, fused=True)
for s in range(steps):
    for group in optimizer.param_groups:
        group["lr"] = lrs[s]
    for i, p in enumerate(params):
        p.grad = torch.randn(p.shape)
        out[f"p{i}.grad{s}"] = p.grad.clone()
    optimizer.step()
    for i, p in enumerate(params):
        out[f"p{i}.after{s}"] = p.detach().clone()
out["lrs"] = torch.tensor(lrs, dtype=torch.float64)
save_file(out, "golden.safetensors", metadata={"torch": torch.__version__})
