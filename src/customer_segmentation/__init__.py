"""Customer segmentation lakehouse: the package behind the job, the notebooks and the CLI."""

__version__ = "0.1.0"
