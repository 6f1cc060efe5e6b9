"""The workbook's checks: call one on your code and read what it says.

Each ``check_*`` runs the learner's function or class on random and edge-case inputs, compares
with torch in float64 (values, autograd, finite differences), and returns a
:class:`~mnistbook.workbook.result.Result`: ``.passed``, and a ``.message`` that names the
quantity that is off, by how much, and the likely mistake with a link to the book. A check never
raises because of the code it checks. The pages ``book/workbook-*.md`` are written by
:mod:`mnistbook.workbook.pages`.
"""

from .layers import check_linear, check_relu
from .links import book_url
from .loss import check_cross_entropy, check_cross_entropy_grad, check_softmax_jacobian
from .network import check_net
from .optimizer import check_sgd
from .result import Result, summary
from .train import check_training

__all__ = ["Result", "book_url", "check_cross_entropy", "check_cross_entropy_grad", "check_linear",
           "check_net", "check_relu", "check_sgd", "check_softmax_jacobian", "check_training", "summary"]
