"""Test-wide settings."""

import torch

# The tests' tensors are small: one thread costs little, and it keeps OpenMP from spinning
# against other processes on a shared 2-core machine (measured: 10-20x slower with 2 threads
# while another job ran).
torch.set_num_threads(1)
