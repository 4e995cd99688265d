"""What every stage shares: the settings and their parameter registry, the table registry, the Spark
session, Delta readers and writers, the editable rule files, errors, console output and drawing."""
