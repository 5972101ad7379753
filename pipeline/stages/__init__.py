"""One module per stage; each is what ``zoo <stage>`` and its ``dvc.yaml`` stage run."""
