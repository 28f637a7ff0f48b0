"""The base every other part imports: settings, errors, the host description. Imports nothing of the project."""
