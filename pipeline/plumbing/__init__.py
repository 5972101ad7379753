"""What every stage uses: atomic writes, errors, paths, MLflow tracking, downloads, progress, start-up, the warm server."""
