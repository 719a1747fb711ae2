"""Pure-Arrow dedup kernels: no pyspark here, so Spark workers unpickle them without it."""
