"""art_he: hypersphere embedding (Pang et al., NeurIPS 2020) for the Adversarial Robustness Toolbox."""

from art_he.estimator import HEAttackLoss, HEPyTorchClassifier
from art_he.heads import HypersphereHead, find_head, to_hypersphere

__version__ = "0.1.0"

__all__ = ["HEAttackLoss", "HEPyTorchClassifier", "HypersphereHead", "__version__", "find_head", "load_run",
           "to_hypersphere"]


def __getattr__(name: str):
    if name == "load_run":  # lazy: keeps `import art_he` light
        from art_he.runs import load_run

        return load_run
    raise AttributeError(f"module 'art_he' has no attribute {name!r}")
