"""Operating the product: the command line, the job runner, notebook glue, workspace commands, the
offline bundle check and the synthetic data generator."""
