"""Entry points (train, evaluate, encode, search, check_lists), sharing hashnet.tasks.setup; none imports another."""
