"""bench/filters: the filter matcher against a plain reference interpreter (and LocalStack's)."""
