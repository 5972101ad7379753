"""rnngan-zoo's pipeline: configuration, data sources, stages, tracking and the CLI.

Nothing here is imported by the models in ``lightning_modules``; the CLI's start-up path
(``pipeline.cli``) imports only the standard library and Typer, so ``zoo --help`` stays fast.
"""
