"""PyTorch peer for the tokenizer benchmark, host to host, fp32, no TF32.

    python3 bench/torch_cuda.py [--device cuda] [--batches 1,32,256] [--runs 10]

Prints one JSON line per cell with the same fields as bench/tokenizer.ts.
"""
import argparse, json, statistics, time
import torch

p = argparse.ArgumentParser()
p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
p.add_argument("--batches", default="1,32,256")
p.add_argument("--runs", type=int, default=10)
args = p.parse_args()
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
dev = torch.device(args.device)


class Seed(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 3, 16, 16)
        self.lin = torch.nn.Linear(3, 768)
        self.cls = torch.nn.Parameter(torch.randn(1, 1, 768))
        self.pos = torch.nn.Parameter(torch.randn(1, 197, 768))

    def forward(self, x):
        p = self.conv(x).flatten(2, 3)
        t = torch.reshape(p, (x.shape[0], 196, 3))
        e = self.lin(t)
        return torch.cat([self.cls.expand(x.shape[0], 1, 768), e], 1) + self.pos


class Standard(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 768, 16, 16)
        self.cls = torch.nn.Parameter(torch.randn(1, 1, 768))
        self.pos = torch.nn.Parameter(torch.randn(1, 197, 768))

    def forward(self, x):
        t = self.conv(x).flatten(2).transpose(1, 2)
        return torch.cat([self.cls.expand(x.shape[0], 1, 768), t], 1) + self.pos


with torch.no_grad():
    for name, cls in (("seed", Seed), ("standard", Standard)):
        model = cls().to(dev).eval()
        for batch in [int(b) for b in args.batches.split(",")]:
            host = torch.rand(batch, 3, 224, 224)
            def once():
                out = model(host.to(dev)).cpu()
                if dev.type == "cuda":
                    torch.cuda.synchronize()
                return out
            for _ in range(3):
                once()
            times = []
            for _ in range(args.runs):
                t0 = time.perf_counter()
                once()
                times.append((time.perf_counter() - t0) * 1000)
            med = statistics.median(times)
            print(json.dumps({"variant": name, "batch": batch, "backend": f"torch-{dev.type}",
                              "images_per_s": round(batch / (med / 1000), 2),
                              "ms_per_batch_median": round(med, 3), "torch": torch.__version__}))
            if dev.type == "cuda" and batch == 256:
                # Device-resident: input already on the GPU, output left there, one sync at the end.
                x = host.to(dev)
                for _ in range(10):
                    model(x)
                torch.cuda.synchronize()
                runs = 200
                t0 = time.perf_counter()
                for _ in range(runs):
                    model(x)
                torch.cuda.synchronize()
                ms = (time.perf_counter() - t0) * 1000 / runs
                print(json.dumps({"variant": name, "batch": batch,
                                  "backend": "torch-cuda (device-resident)",
                                  "images_per_s": round(batch / (ms / 1000), 1),
                                  "ms_per_batch_mean": round(ms, 3), "runs": runs}))
