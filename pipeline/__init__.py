"""rnngan-zoo's pipeline: configuration, data sources, stages, tracking and the CLI.

Nothing here is imported by the models in ``lightning_modules``; the CLI's start-up path
(``pipeline.cli``) imports only the standard library and Typer, so ``zoo --help`` stays fast.

The subpackages, by role (dvc.yaml declares a stage's code by these folders):
``stages`` (a module per DVC stage), ``tasks``, ``datasets``, ``training`` (the training
runtime), ``evaluation`` (metrics, the reference classifier, diagnostics), ``reporting``
(claims, the report page, the model registry, ``zoo show``) and ``plumbing`` (what every
stage uses: atomic writes, errors, paths, tracking, downloads, progress, start-up, the warm
server).
"""
