"""Training: the LightningModule that runs any method, its callbacks, optimiser groups, checkpoint IO, gathering."""
