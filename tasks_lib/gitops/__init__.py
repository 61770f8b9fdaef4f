"""git as the store of versions: the repository, commits and tags, and the backup and restore of one task's files."""
