"""The denoiser worker: the reverse page's network runs in a process of its own, fed by a fair queue
(fair_queue), over a small message protocol (protocol), in a worker loop (child), managed from the
server by a pool (pool) that the page reads through tickets."""
