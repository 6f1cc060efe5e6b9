"""The code behind the book *MNIST two ways*.

Every chapter imports from here, so each piece of logic exists once: data loading
(:mod:`~mnistbook.data`, :mod:`~mnistbook.batches`), the PyTorch model and its training
(:mod:`~mnistbook.model`, :mod:`~mnistbook.training`, :mod:`~mnistbook.metrics`), the
derived formulas (:mod:`~mnistbook.functional`), the from-scratch network
(:mod:`~mnistbook.scratch`) and the tools that prove it right or show it wrong
(:mod:`~mnistbook.gradcheck`, :mod:`~mnistbook.lockstep`, :mod:`~mnistbook.bugs`,
:mod:`~mnistbook.diagnostics`).
"""

__version__ = "1.0.0"
