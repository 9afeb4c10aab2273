"""Processes that run beside the services: drift exporter, crash service, Jira bridge, command line."""
