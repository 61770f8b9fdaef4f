"""What changed between two versions of one task, or a version and the live tree (``clawback
diff``; docs/design.md, "Diff").

``sides`` reads one side (a verified version, or ``working``: what a snapshot would take now),
``textdiff`` compares files with every shown line masked, ``keyed`` compares parsed data key by
key, ``packages`` the dependencies, and ``compare`` puts the four sections together. Read-only:
nothing here writes a file, the index or a ref.
"""
