"""Networks as plain ``nn.Module``s, one module per model family. They import torch only."""
