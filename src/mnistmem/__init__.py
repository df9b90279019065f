"""mnistmem: do generative models store copies of their training data? An exhaustive check on MNIST.

The package behind the book: exact offline MNIST (`mnistmem.data`), devices (`mnistmem.devices`),
and, in later modules, models, training, sampling, nearest-neighbour search, copy criteria and results.
Submodules are imported on demand so that `import mnistmem` stays fast and never needs torchvision.
"""

__version__ = "0.1.0"
