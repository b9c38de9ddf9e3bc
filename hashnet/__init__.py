"""hashnet: HashNet (Cao et al., ICCV 2017) on PyTorch Lightning + Hydra."""
