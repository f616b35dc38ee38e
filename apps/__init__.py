"""Applications over the store and the code location: the CLI, the REST API, the dashboard."""
