"""The files clawback reads and edits in place: JSON (format-preserving), the YAML version line, task configs, the registry, the manifest."""
