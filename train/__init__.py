"""PyTorch training of the reference networks and a numpy float evaluator."""
