"""Models: feature preparation, the MLlib sweep, exact metrics, the champion rule, segment names
and the MLflow tracking of it all."""
