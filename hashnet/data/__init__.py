"""Data: list files, images, cache, sampling, dataset builders, the DataModule and the list checker."""
