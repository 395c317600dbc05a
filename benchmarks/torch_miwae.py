"""A PyTorch MIWAE of the same size as the zoo's, for `python -m training.speed_miwae` to time beside it.

Run by that script in an interpreter that has torch (``--torch-python``); prints one JSON line. It is the
authors' TF2 notebook model (the zoo's defaults): encoder D -> 128 -> 128 -> 128 -> 2d, decoder d -> 128 ->
128 -> 3D (Student-t loc, scale = softplus + 1e-3, df = softplus + 3), ReLU, He-normal kernels, a learned
imputation constant, Adam 1e-3, K draws per row in training; single imputation by self-normalised
importance sampling over L draws, `chunk` at a time with a running log-sum-exp (the zoo's algorithm),
under `torch.no_grad()`. Written for this benchmark, not taken from any package.
"""
import argparse
import json
import math
import resource
import time

import numpy as np
import torch
from torch import nn


def peak_rss_reset():
    """Reset the kernel's peak-RSS mark (Linux clear_refs 5); returns the current RSS in MiB."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return _status("VmRSS")


def _status(key):  # also in training/speed_miwae.py: this script runs in an interpreter without the zoo
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def mlp(sizes):
    layers = []
    for i in range(len(sizes) - 1):
        linear = nn.Linear(sizes[i], sizes[i + 1])
        nn.init.kaiming_normal_(linear.weight)
        nn.init.zeros_(linear.bias)
        layers.append(linear)
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class MIWAE(nn.Module):
    def __init__(self, n_features, latent_dim=10, width=128):
        super().__init__()
        self.d, self.p = latent_dim, n_features
        self.encoder = mlp([n_features, width, width, width, 2 * latent_dim])
        self.decoder = mlp([latent_dim, width, width, 3 * n_features])
        self.constant = nn.Parameter(torch.zeros(n_features))

    def posterior(self, x, mask):
        out = self.encoder(mask * x + (1 - mask) * self.constant)
        return out[:, : self.d], nn.functional.softplus(out[:, self.d :]) + 1e-4

    def log_weights(self, x, mask, z, mean, scale):
        params = self.decoder(z).reshape(*z.shape[:-1], self.p, 3)
        loc, obs_scale = params[..., 0], nn.functional.softplus(params[..., 1]) + 1e-3
        df = nn.functional.softplus(params[..., 2]) + 3.0
        log_px = (mask * torch.distributions.StudentT(df, loc, obs_scale).log_prob(x)).sum(-1)
        log_prior = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
        log_q = torch.distributions.Normal(mean, scale).log_prob(z).sum(-1)
        return log_px + log_prior - log_q, loc

    def bound(self, x, mask, k):
        mean, scale = self.posterior(x, mask)
        z = mean + scale * torch.randn(k, *mean.shape)
        log_w, _ = self.log_weights(x, mask, z, mean, scale)
        return (torch.logsumexp(log_w, 0) - math.log(k)).mean()

    @torch.no_grad()
    def impute(self, x, mask, samples, chunk):
        mean, scale = self.posterior(x, mask)
        log_total = torch.full((x.shape[0],), -math.inf)
        weighted = torch.zeros_like(x)
        for start in range(0, samples, chunk):
            size = min(chunk, samples - start)
            z = mean + scale * torch.randn(size, *mean.shape)
            log_w, loc = self.log_weights(x, mask, z, mean, scale)
            new_total = torch.logsumexp(torch.cat([log_total[None], log_w]), 0)
            weighted = torch.exp(log_total - new_total)[:, None] * weighted + (torch.exp(log_w - new_total)[..., None] * loc).sum(0)
            log_total = new_total
        return mask * x + (1 - mask) * weighted


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True, help=".npz with x and mask (1 = observed)")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--imputation-samples", default="1000,10000")
    parser.add_argument("--rows-per-call", type=int, default=512)
    parser.add_argument("--chunk", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    data = np.load(args.data)
    x, mask = torch.tensor(np.nan_to_num(data["x"]), dtype=torch.float32), torch.tensor(data["mask"], dtype=torch.float32)
    model = MIWAE(x.shape[1])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = np.random.default_rng(0)

    def train(steps):
        for _ in range(steps):
            rows = torch.from_numpy(generator.integers(0, len(x), args.batch_size))
            optimizer.zero_grad()
            loss = -model.bound(x[rows], mask[rows], args.samples)
            loss.backward()
            optimizer.step()

    train(200)  # warm-up
    start = time.perf_counter()
    train(args.steps)
    report = {"train_steps_per_second": args.steps / (time.perf_counter() - start), "torch": torch.__version__, "threads": args.threads}
    for samples in (int(s) for s in args.imputation_samples.split(",")):
        before = peak_rss_reset()
        model.impute(x[: args.rows_per_call], mask[: args.rows_per_call], samples, args.chunk)  # warm-up, as the zoo's
        report[f"first_call_peak_extra_mib_L{samples}"] = _status("VmHWM") - before
        before = peak_rss_reset()
        start = time.perf_counter()
        for begin in range(0, len(x), args.rows_per_call):
            model.impute(x[begin : begin + args.rows_per_call], mask[begin : begin + args.rows_per_call], samples, args.chunk)
        seconds = time.perf_counter() - start
        report[f"impute_rows_per_second_L{samples}"] = len(x) / seconds
        report[f"impute_peak_extra_mib_L{samples}"] = _status("VmHWM") - before
    report["max_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps(report))


if __name__ == "__main__":
    main()
