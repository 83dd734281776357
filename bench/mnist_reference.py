#!/usr/bin/python3
"""The book's run of network.py (chapter 1) in Python, timed, as a peer for
02-backprop: [784, 30, 10], mini-batches of 10, eta 3.0, quadratic cost.

  mnist_reference.py numpy DATA_DIR EPOCHS   the book's per-example backprop in numpy
  mnist_reference.py torch DATA_DIR EPOCHS   the same network in PyTorch eager mode

Prints one line per epoch, "Epoch k: correct / 10000 (s seconds)", and a
final "seconds_per_epoch S" line. Written for this benchmark (not a copy of
the book's code), following the book's algorithm step by step.
"""
import gzip
import os
import sys
import time

import numpy as np


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    ndims = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndims).reshape(dims)


def load(data_dir):
    def find(name):
        p = os.path.join(data_dir, "mnist", name)
        return p if os.path.exists(p) else p + ".gz"
    train_x = read_idx(find("train-images-idx3-ubyte")).reshape(-1, 784).astype(np.float32) / 255
    train_y = read_idx(find("train-labels-idx1-ubyte"))
    test_x = read_idx(find("t10k-images-idx3-ubyte")).reshape(-1, 784).astype(np.float32) / 255
    test_y = read_idx(find("t10k-labels-idx1-ubyte"))
    return train_x[:50000], train_y[:50000], test_x, test_y


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def run_numpy(train_x, train_y, test_x, test_y, epochs):
    rng = np.random.default_rng(1)
    sizes = [784, 30, 10]
    biases = [rng.standard_normal((y, 1)) for y in sizes[1:]]
    weights = [rng.standard_normal((y, x)) for x, y in zip(sizes[:-1], sizes[1:])]
    xs = [x.reshape(784, 1).astype(np.float64) for x in train_x]
    ys = []
    for label in train_y:
        e = np.zeros((10, 1))
        e[label] = 1.0
        ys.append(e)
    times = []
    for epoch in range(epochs):
        start = time.perf_counter()
        order = rng.permutation(len(xs))
        for k in range(0, len(xs), 10):
            nabla_b = [np.zeros(b.shape) for b in biases]
            nabla_w = [np.zeros(w.shape) for w in weights]
            for i in order[k:k + 10]:
                # backprop for one example, as network.py does it
                activation, activations, zs = xs[i], [xs[i]], []
                for b, w in zip(biases, weights):
                    z = w @ activation + b
                    zs.append(z)
                    activation = sigmoid(z)
                    activations.append(activation)
                delta = (activations[-1] - ys[i]) * sigmoid(zs[-1]) * (1 - sigmoid(zs[-1]))
                nabla_b[-1] += delta
                nabla_w[-1] += delta @ activations[-2].T
                for l in range(2, len(sizes)):
                    sp = sigmoid(zs[-l]) * (1 - sigmoid(zs[-l]))
                    delta = (weights[-l + 1].T @ delta) * sp
                    nabla_b[-l] += delta
                    nabla_w[-l] += delta @ activations[-l - 1].T
            weights = [w - (3.0 / 10) * nw for w, nw in zip(weights, nabla_w)]
            biases = [b - (3.0 / 10) * nb for b, nb in zip(biases, nabla_b)]
        times.append(time.perf_counter() - start)
        a = test_x.T.astype(np.float64)
        for b, w in zip(biases, weights):
            a = sigmoid(w @ a + b)
        correct = int((a.argmax(axis=0) == test_y).sum())
        print(f"Epoch {epoch}: {correct} / 10000 ({times[-1]:.2f} s)", flush=True)
    return times


def run_torch(train_x, train_y, test_x, test_y, epochs):
    import torch
    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Linear(784, 30), torch.nn.Sigmoid(),
                                torch.nn.Linear(30, 10), torch.nn.Sigmoid())
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 1.0)
    opt = torch.optim.SGD(model.parameters(), lr=3.0)
    x_all = torch.from_numpy(train_x)
    y_all = torch.nn.functional.one_hot(torch.from_numpy(train_y.astype(np.int64)), 10).float()
    tx, ty = torch.from_numpy(test_x), torch.from_numpy(test_y.astype(np.int64))
    times = []
    for epoch in range(epochs):
        start = time.perf_counter()
        order = torch.randperm(50000)
        for k in range(0, 50000, 10):
            idx = order[k:k + 10]
            out = model(x_all[idx])
            # sum over the batch of 1/2 ||a - y||^2, divided by m: the book's update
            loss = 0.5 * ((out - y_all[idx]) ** 2).sum() / 10
            opt.zero_grad()
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - start)
        with torch.no_grad():
            correct = int((model(tx).argmax(dim=1) == ty).sum())
        print(f"Epoch {epoch}: {correct} / 10000 ({times[-1]:.2f} s)", flush=True)
    return times


if __name__ == "__main__":
    which, data_dir, epochs = sys.argv[1], sys.argv[2], int(sys.argv[3])
    data = load(data_dir)
    times = (run_numpy if which == "numpy" else run_torch)(*data, epochs)
    print(f"seconds_per_epoch {float(np.median(times)):.3f}")
