"""A task's Python dependencies: the lock, per-task and shared environments, uv and pip's settings, which interpreter runs the task."""
