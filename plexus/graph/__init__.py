"""Symbolic tensors, nodes, and ordering a graph of layer calls."""
from plexus.graph.tensor import KerasTensor, is_keras_tensor
from plexus.graph.node import Node
