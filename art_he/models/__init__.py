"""Models with input normalisation inside: a small CNN for 28x28 inputs, PreAct ResNet-18, WideResNets."""

from art_he.models.factory import MODELS, build_model
from art_he.models.layers import Normalize
from art_he.models.preact_resnet import PreActResNet18
from art_he.models.small_cnn import SmallCNN
from art_he.models.wide_resnet import WideResNet

__all__ = ["MODELS", "Normalize", "PreActResNet18", "SmallCNN", "WideResNet", "build_model"]
