"""Data-parallel training with ``torch.distributed``: derived, run and compared.

- :mod:`~mnistbook.parallel.shards`: the arithmetic of a batch split across processes,
  and what ``DistributedSampler`` hands each of them;
- :mod:`~mnistbook.parallel.processes`: starting the processes (spawn), on the loopback
  address, with timeouts and the failing worker's traceback;
- :mod:`~mnistbook.parallel.replicas`: DDP and the all-reduced scratch network, and the
  single process they must equal;
- :mod:`~mnistbook.parallel.bugs`: the classic data-parallel bugs;
- :mod:`~mnistbook.parallel.cost`: time per step against processes and batch size;
- :mod:`~mnistbook.parallel.faults`: a process that fails on purpose, to show and test
  what a launch does then;
- :mod:`~mnistbook.parallel.experiments`: the chapter's experiments, in one launch.

``python -m mnistbook.parallel --steps N`` (or the same under ``torchrun``) trains with
DDP and prints the largest weight difference from one process.
"""
