"""The training runtime: batches, training curves, resuming, batched MLflow logging, the training record."""
