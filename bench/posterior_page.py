"""Benchmark of the posterior page's t slider as students use it: a real `streamlit run app.py` driven by Chromium.

    python -m bench.posterior_page              # about a minute on 2 cores
    python -m bench.posterior_page --steps 10

Prints a markdown table on stdout (progress on stderr):

- the server's work for one new t, outside Streamlit: q(x_{t-1} | x_t, x_0) and its draws, one network call
  with p_theta's mean (diffusion_core.process.posterior.p_mean_variance), the KL two ways; median over the steps;
- in the browser: from an arrow-key press on the t slider to the settled step (the new t in the caption of
  mu_theta and the script idle), median and 90th percentile over ``--steps`` presses; the closed-form page's
  t slider (a whole-page rerun) is measured the same way as the reference;
- the load average while it ran: on the shared 2-core machine the browser timings scale with it.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as ``python bench/posterior_page.py``
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

from bench.reverse_page import CHROMIUM, start_server  # the same server and browser set-up
from diffusion_core.process.elbo import normal_kl, posterior_kl_from_eps
from diffusion_core.process.forward import q_sample
from diffusion_core.data.images import image_to_tensor
from diffusion_core.process.posterior import p_mean_variance, q_posterior_mean_variance
from diffusion_core.data.samples import load_sample_image
from diffusion_core.models.weights import load_denoiser


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def server_step_ms(steps: int) -> float:
    """Median wall time of one t's computation on one digit (torch limited to one thread, as on the page)."""
    torch.set_num_threads(1)
    model = load_denoiser("cpu")
    s = model.schedule
    x0 = image_to_tensor(load_sample_image("digit_3")).double()
    label = torch.tensor([3])

    def eps_fn(x, t):
        with torch.inference_mode():
            return model(x.float(), t, label).double()

    times = []
    for i in range(steps + 1):
        t = 250 + i
        start = time.perf_counter()
        g = torch.Generator().manual_seed(0)
        eps = torch.randn(x0.shape, generator=g, dtype=torch.float64)
        z = torch.randn((4, *x0.shape[1:]), generator=g, dtype=torch.float64)
        x_t = q_sample(x0, t, eps, s)
        mu, var = q_posterior_mean_variance(x0, x_t, t, s)
        _ = mu + var.sqrt() * z
        p = p_mean_variance(eps_fn, x_t, t, s)
        normal_kl(mu, var, p.mean, p.variance).sum()
        posterior_kl_from_eps(eps, p.eps_hat, t, s, p.variance)
        if i:  # the first call builds the convolution kernels of batch 1
            times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times)


def slider_ms(url: str, path: str, slider_index: int, settled_text: str | None, steps: int) -> list[float]:
    """Milliseconds from each ArrowRight on the slider to the settled page."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                    args=["--no-sandbox", "--disable-background-networking", "--disable-gpu"])
        pg = browser.new_page(viewport={"width": 1400, "height": 1000})
        pg.goto(f"{url}/{path}?lang=en")
        idle = '[data-testid="stApp"][data-test-script-state="notRunning"]'
        pg.wait_for_selector(idle, timeout=120000)
        pg.wait_for_timeout(1500)
        thumb = pg.locator('[data-testid="stSlider"]').nth(slider_index).get_by_role("slider")
        thumb.focus()
        times = []
        for _ in range(steps):
            value = int(thumb.get_attribute("aria-valuetext") or thumb.inner_text())
            start = time.perf_counter()
            pg.keyboard.press("ArrowRight")
            if settled_text:
                pg.get_by_text(settled_text.format(t=value + 1), exact=True).wait_for(timeout=30000)
            else:
                pg.wait_for_selector('[data-testid="stApp"][data-test-script-state="running"]', timeout=30000)
            pg.wait_for_selector(idle, timeout=30000)
            times.append(1000 * (time.perf_counter() - start))
            pg.wait_for_timeout(300)
        browser.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=15, help="slider steps measured per page")
    args = parser.parse_args()
    log("server-side step ...")
    server = server_step_ms(args.steps)
    load_before = os.getloadavg()[0]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc, url = start_server(port), f"http://127.0.0.1:{port}"
    try:
        log("posterior page ...")
        post = slider_ms(url, "Posterior", 0, "μθ: the network's mean, t = {t}", args.steps)
        log("closed-form page (reference) ...")
        closed = slider_ms(url, "Closed_form", 1, None, args.steps)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    load_after = os.getloadavg()[0]

    def p90(v: list[float]) -> float:
        return sorted(v)[min(len(v) - 1, round(0.9 * (len(v) - 1)))]

    print("| measure | median (ms) | p90 (ms) |")
    print("| --- | --- | --- |")
    print(f"| server work for one t (q, draws, 1 network call, KL two ways) | {server:.1f} | |")
    print(f"| posterior page: t slider key press to settled step ({args.steps} steps) | {statistics.median(post):.0f} | {p90(post):.0f} |")
    print(f"| closed-form page (reference): t slider key press to settled page | {statistics.median(closed):.0f} | {p90(closed):.0f} |")
    print(f"\nLoad average (1 min) on this machine: {load_before:.1f} before, {load_after:.1f} after "
          f"({os.cpu_count()} CPUs).")


if __name__ == "__main__":
    main()
