"""The time machine (docs/design.md, "Preview (the time machine)"): a stored version looked at,
written out or smoke-tested without touching the live task.

- ``resolve``: the task and version asked for, the snapshot's tag and manifest, and what makes
  the manifest untrustworthy (a digest that does not verify, a moved tag);
- ``summary``: what the version is (files, config with secrets masked, dependencies, runtime
  settings, environment variable names, stable / quarantined mark, when, who and why);
- ``show``: one file as it was, secret values masked;
- ``trees``: materialised previews (written from git's blobs, never through a link);
- ``index``: their index and marker, and ``--cleanup``; ``written``: the record of what each
  preview wrote, and removing exactly that;
- ``smoke``: levels 1–3 of the version in a temporary preview, with its own environment from
  the cache rollback uses, never switching the live one.

Plain Python, never Prefect: nothing here changes the workspace's versioned files, registry or
git state, so nothing is worth a flow run.
"""
