#!/usr/bin/python3
"""bench_torch.py - bench/bench.lua's cases in PyTorch, printing the same "name value unit"
lines (bench/run.sh runs it with /usr/bin/python3 when torch imports)."""

import torch



from bench_common import best, report  # noqa: E402  (bench/bench_common.py)


def main():
    torch.set_grad_enabled(False)  # lucid's tensors here do not require grad either
    threads = torch.get_num_threads()

    a, b = torch.ones(1), torch.ones(1)
    best(20000, 1, lambda: a + b)
    report("add_1_ns", best(200000, 5, lambda: a + b) * 1e9, "ns")
    a, b = torch.ones(4, 4), torch.ones(4, 4)
    report("add_4x4_ns", best(200000, 5, lambda: a + b) * 1e9, "ns")

    with torch.enable_grad():  # the same with autograd: each add records a graph node
        a = torch.ones(4, 4, requires_grad=True)
        b = torch.ones(4, 4, requires_grad=True)
        best(20000, 1, lambda: a + b)
        report("add_grad_ns", best(200000, 5, lambda: a + b) * 1e9, "ns")

        # a 4 -> 3 -> 2 MLP on one sample, forward + backward, written with plain tensor ops
        x = torch.randn(1, 4)
        w1 = torch.randn(3, 4, requires_grad=True)
        b1 = torch.randn(3, requires_grad=True)
        w2 = torch.randn(2, 3, requires_grad=True)
        b2 = torch.randn(2, requires_grad=True)

        def step():
            w1.grad = b1.grad = w2.grad = b2.grad = None
            h = (x.matmul(w1.t()) + b1).relu()
            y = h.matmul(w2.t()) + b2
            y.sum().backward()

        best(2000, 1, step)
        report("mlp_4_3_2_us", best(20000, 5, step) * 1e6, "us")

        # a 4 -> 3 -> 2 nn.Sequential, forward + backward + manual SGD
        model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
        params = list(model.parameters())
        x = torch.randn(1, 4)

        def seq_step():
            model.zero_grad()
            model(x).sum().backward()
            with torch.no_grad():
                for p in params:
                    p.sub_(p.grad * 0.01)

        best(2000, 1, seq_step)
        report("seq_4_3_2_sgd_us", best(20000, 5, seq_step) * 1e6, "us")

        # a 784 -> 256 -> 10 MLP train step at batch 64
        model = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(),
                                    torch.nn.Linear(256, 10))
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        x = torch.rand(64, 784)
        y = torch.randint(0, 10, (64,))

        def mlp_step():
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()

        best(20, 1, mlp_step)
        report("mlp_784_256_10_step_ms", best(200, 5, mlp_step) * 1e3, "ms")

    t = torch.rand(1000)
    best(10000, 1, lambda: t.sum())
    report("sum_1000_ns", best(100000, 5, lambda: t.sum()) * 1e9, "ns")

    torch.set_num_threads(1)
    n = 10 * 1000 * 1000
    a, b = torch.rand(n), torch.rand(n)
    a + b
    report("add_10M_1t_gbps", 3 * 4 * n / best(1, 10, lambda: a + b) / 1e9, "GB/s")

    n = 1024
    a, b = torch.rand(n, n) - 0.5, torch.rand(n, n) - 0.5
    for name, nthreads in (("matmul_1024_gflops", threads), ("matmul_1024_1t_gflops", 1)):
        torch.set_num_threads(nthreads)
        a @ b
        report(name, 2 * n ** 3 / best(1, 7, lambda: a @ b) / 1e9, "GFLOP/s")
    torch.set_num_threads(threads)


if __name__ == "__main__":
    main()
